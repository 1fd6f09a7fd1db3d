import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { buildReport } from "../../../src/report/build.ts"
import type { ReportData, StageRecord, Table } from "../../../src/report/model.ts"
import { predictLoss } from "../../../src/scaling/law.ts"
import type { LawParams } from "../../../src/scaling/law.ts"
import { publishedLaw } from "../../../src/scaling/published.ts"
import type { ScalingFitResult } from "../../../src/scaling/schema.ts"
import { fitAll } from "../../../stages/analysis/scalingFit.ts"
import { record } from "./fixture.ts"

// Three shapes x three budgets; the tiny preset's batch (4 sequences of 32 tokens).
const shapes = [
  { shape: "d256-l6", N: 3e7, iters: [22, 65, 217] },
  { shape: "d512-l9", N: 9e7, iters: [7, 22, 72] },
  { shape: "d1024-l12", N: 3e8, iters: [2, 6, 21] }
]
const budgets = [1e18, 3e18, 1e19]
const perIteration = 4 * 32

const trainParams = (scale: string, trainIters: number, wsdDecayFraction: number) => ({
  scale,
  trainIters,
  globalBatchSize: 4,
  microBatchSize: 4,
  saveInterval: trainIters,
  wsdDecayFraction,
  model: { seqLength: 32, hiddenSize: 8 }
})

// Integer anneal length and start, counted independently of the code under test.
const anneal = (t: number) => (t - (t % 10)) / 10
const start = (t: number) => t - anneal(t)

interface Options {
  /** Whether the report covers the grid (its train stages and fit), as cooldown-tiny does. */
  readonly grid: boolean
  /** Cool-down branches whose execution was not seeded (trained from step 0). */
  readonly unseeded?: ReadonlyArray<string>
}

/** A cool-down report's data: validation points from a known law, fits by the real code. */
const cooldownData = (o: Options): ReportData => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fp-cooldown-report-"))
  const records: Array<StageRecord> = []
  const inputs = { grid: {} as Record<string, string>, cooldown: {} as Record<string, string> }
  for (const s of shapes) {
    const constIters = Math.max(...s.iters.map(start))
    records.push(record(`ablation/cooldown/train/${s.shape}-const-tiny`, "train", {
      params: { ...trainParams(`${s.shape}-cooldown-tiny`, constIters, 0), saveIters: s.iters.map(start) },
      result: { iterations: constIters }
    }))
    budgets.forEach((b, i) => {
      const point = `${s.shape}-${b.toExponential(0).replace("+", "")}-tiny`
      const T = s.iters[i]!
      const D = b / (6 * s.N)
      const seeded = !(o.unseeded ?? []).includes(point)
      records.push(record(`ablation/cooldown/train/${point}`, "train", {
        params: trainParams(`${s.shape}-cooldown-tiny`, T, 0.1),
        result: seeded ? { iterations: T, seedIteration: start(T) } : { iterations: T }
      }))
      if (o.grid) {
        records.push(record(`ablation/train/${point}`, "train", {
          params: trainParams(point, T, 0.1),
          result: { iterations: T }
        }))
      }
      // The branches do a little better at small budgets, where the grid's 1% warm-up weighs more.
      const losses = {
        grid: predictLoss(publishedLaw, s.N, D),
        cooldown: predictLoss(publishedLaw, s.N, D) - 0.02 / (i + 1)
      }
      for (const kind of ["grid", "cooldown"] as const) {
        const doc = {
          point,
          shape: s.shape,
          flopsBudget: b,
          iteration: T,
          activeParams: s.N,
          totalParams: 3 * s.N,
          tokens: D,
          flops: b,
          loss: losses[kind],
          perplexity: Math.exp(losses[kind]),
          samples: 128
        }
        const file = path.join(dir, `${kind}-${point}.json`)
        fs.writeFileSync(file, JSON.stringify(doc))
        inputs[kind][`point:${point}`] = file
        const stage = kind === "grid" ? `ablation/val-loss/${point}` : `ablation/cooldown/val-loss/${point}`
        if (kind === "cooldown" || o.grid) records.push(record(stage, "ablation/validation-loss", { result: doc }))
      }
    })
  }
  const grid = { logE: [0, 1], logA: [5], alpha: [0.5], logB: [15], beta: [0.5, 1] } as const
  const fit = (points: Record<string, string>) =>
    fitAll({ methods: ["raw", "log"], delta: 1e-3, grid, curvePoints: 11 }, points)
  if (o.grid) records.push(record("ablation/fit", "scaling/fit", { documents: { "fit.json": fit(inputs.grid) } }))
  records.push(record("ablation/cooldown/fit", "scaling/fit", { documents: { "fit.json": fit(inputs.cooldown) } }))
  fs.rmSync(dir, { recursive: true, force: true })
  return {
    title: "cool-down",
    pipeline: "ablation",
    preset: "cooldown-tiny",
    generatedAt: "2024-01-01T00:00:00Z",
    workspace: "/ws",
    records,
    missing: []
  }
}

const fitIn = (data: ReportData, stageId: string): ScalingFitResult =>
  data.records.find((r) => r.stageId === stageId)!.documents["fit.json"] as ScalingFitResult

/**
 * The compute-optimal N at compute C, found by minimising L(N, C / 6N) numerically (a scan over log N,
 * then golden-section search), without the closed form the report uses.
 */
const optimum = (p: LawParams, C: number) => {
  const loss = (logN: number) => predictLoss(p, Math.exp(logN), C / (6 * Math.exp(logN)))
  let best = Math.log(1e3)
  for (let x = Math.log(1e3); x <= Math.log(1e15); x += 0.01) if (loss(x) < loss(best)) best = x
  let [a, b] = [best - 0.01, best + 0.01]
  const g = (Math.sqrt(5) - 1) / 2
  for (let i = 0; i < 200; i++) {
    const c = b - g * (b - a)
    const d = a + g * (b - a)
    if (loss(c) < loss(d)) b = d
    else a = c
  }
  const N = Math.exp((a + b) / 2)
  return { N, loss: predictLoss(p, N, C / (6 * N)) }
}

const table = (data: ReportData, id: string): Table => {
  const section = buildReport(data).sections.find((s) => s.id === "cooldown")!
  return section.tables.find((t) => t.id === id)!
}

/** A table cell as a number (fmt's four significant digits; counts with thousands separators). */
const num = (cell: unknown) => Number(String(cell).replace(/,/g, "").replace(/%$/, ""))

const closeTo = (actual: unknown, expected: number, digits = 4) =>
  expect(Math.abs(num(actual) - expected), `${String(actual)} vs ${expected}`).toBeLessThanOrEqual(
    Math.abs(expected) * 10 ** (1 - digits) / 2 + 1e-12
  )

describe("the cool-down section", () => {
  const data = cooldownData({ grid: true, unseeded: ["d512-l9-3e18-tiny"] })

  it("shows both fits' constants side by side, per method", () => {
    const t = table(data, "cooldown-constants")
    expect(t.columns).toEqual(["", "grid (raw)", "cool-down (raw)", "grid (log)", "cool-down (log)"])
    expect(t.rows.map((r) => r[0])).toEqual(["E", "A", "alpha", "B", "beta", "objective", "runs"])
    const grid = fitIn(data, "ablation/fit")
    const cooled = fitIn(data, "ablation/cooldown/fit")
    const keys = ["E", "A", "alpha", "B", "beta"] as const
    keys.forEach((k, row) => {
      ;(["raw", "log"] as const).forEach((method, m) => {
        closeTo(t.rows[row]![1 + 2 * m], grid.fits.find((f) => f.method === method)!.params[k])
        closeTo(t.rows[row]![2 + 2 * m], cooled.fits.find((f) => f.method === method)!.params[k])
      })
    })
    expect(t.rows[6]).toEqual(["runs", "9", "9", "9", "9"])
    expect(t.sources).toEqual(["ablation/fit", "ablation/cooldown/fit"])
  })

  it("predicts the compute-optimal loss of each fit at every budget, and their difference", () => {
    const t = table(data, "cooldown-optimal")
    const grid = fitIn(data, "ablation/fit")
    const cooled = fitIn(data, "ablation/cooldown/fit")
    expect(t.rows).toHaveLength(3 * 2)
    for (const row of t.rows) {
      const [budget, C, method] = [row[0], num(row[1]), row[2] as "raw" | "log"]
      expect(["1.0e18", "3.0e18", "1.0e19"]).toContain(budget)
      // Every run of a budget spent its nominal compute here.
      closeTo(row[1], budgets[["1.0e18", "3.0e18", "1.0e19"].indexOf(String(budget))]!)
      const g = optimum(grid.fits.find((f) => f.method === method)!.params, C)
      const c = optimum(cooled.fits.find((f) => f.method === method)!.params, C)
      closeTo(row[3], g.N, 3)
      closeTo(row[4], c.N, 3)
      closeTo(row[5], g.loss)
      closeTo(row[6], c.loss)
      expect(Math.abs(num(row[7]) - (c.loss - g.loss))).toBeLessThan(2e-4)
    }
  })

  it("counts planned tokens from params and trained tokens from the executions' seed iterations", () => {
    // Step by step: the grid trains every iteration of every run; the cool-down plan trains the
    // constant-rate run to the latest anneal start and each branch's anneal; the executions trained
    // from their seed (the unseeded branch from step 0).
    let grid = 0
    let planned = 0
    let trained = 0
    let scratch = 0
    for (const s of shapes) {
      const latest = Math.max(...s.iters.map(start))
      for (let it = 1; it <= latest; it++) {
        planned += perIteration
        trained += perIteration
        scratch += perIteration
      }
      s.iters.forEach((T, i) => {
        const point = `${s.shape}-${budgets[i]!.toExponential(0).replace("+", "")}-tiny`
        for (let it = 1; it <= T; it++) {
          grid += perIteration
          scratch += perIteration
          if (it > start(T)) planned += perIteration
          if (it > start(T) || point === "d512-l9-3e18-tiny") trained += perIteration
        }
      })
    }
    const t = table(data, "cooldown-tokens")
    expect(t.rows[0]!.slice(0, 5).map((c, i) => (i < 2 ? c : num(c)))).toEqual(["grid", 9, grid, grid, grid])
    expect(t.rows[1]!.slice(0, 5).map((c, i) => (i < 2 ? c : num(c)))).toEqual([
      "cool-down",
      12,
      planned,
      scratch,
      trained
    ])
    closeTo(t.rows[1]![5], 100 * planned / grid, 3)
    closeTo(t.rows[1]![6], 100 * trained / grid, 3)
    expect(t.rows[0]![2]).toMatch(/^\d{1,3}(,\d{3})*$/)
  })

  it("breaks the tokens down per shape", () => {
    const t = table(data, "cooldown-tokens-by-shape")
    expect(t.rows.map((r) => r[0])).toEqual(shapes.map((s) => `${s.shape}-cooldown-tiny`))
    shapes.forEach((s, i) => {
      const grid = s.iters.reduce((n, T) => n + T, 0) * perIteration
      const planned = (Math.max(...s.iters.map(start)) + s.iters.reduce((n, T) => n + anneal(T), 0)) * perIteration
      expect(num(t.rows[i]![1])).toBe(grid)
      expect(num(t.rows[i]![2])).toBe(planned)
      closeTo(t.rows[i]![4], 100 * planned / grid, 3)
    })
  })

  it("plots both fits' optimal losses and each point's loss in both grids", () => {
    const section = buildReport(data).sections.find((s) => s.id === "cooldown")!
    expect(section.figures.map((f) => f.id)).toEqual(["cooldown-optimal-loss", "cooldown-loss-pairs"])
    const pairs = section.figures[1]!.option.series as Array<{ data: Array<[number, number]> }>
    expect(pairs[0]!.data).toHaveLength(9)
    for (const [g, c] of pairs[0]!.data) expect(c).toBeLessThan(g)
    expect(section.intro).toContain("cool-down branch minus grid run")
  })

  it("sits after the scaling law, titles each fit's figures by stage, and separates the two grids' loss lines", () => {
    const report = buildReport(data)
    const ids = report.sections.map((s) => s.id)
    expect(ids.indexOf("cooldown")).toBe(ids.indexOf("scaling-law") + 1)
    const scaling = report.sections.find((s) => s.id === "scaling-law")!
    expect(scaling.tables.map((t) => t.title)).toContain("Fitted constants: ablation/cooldown/fit")
    const compute = report.sections.find((s) => s.id === "compute")!
    const lines = (compute.figures[0]!.option.series as Array<{ name: string }>).map((s) => s.name)
    expect(lines).toEqual(expect.arrayContaining(["d256-l6", "d256-l6 (cool-down)"]))
    expect(lines).toHaveLength(6)
  })
})

describe("the cool-down section without the grid (the cooldown preset)", () => {
  const data = cooldownData({ grid: false })

  it("holds the cool-down fits against FLAME-MoE's published constants", () => {
    const t = table(data, "cooldown-constants")
    expect(t.columns).toEqual(["", "published (raw)", "cool-down (raw)", "published (log)", "cool-down (log)"])
    closeTo(t.rows[0]![1], publishedLaw.E)
    closeTo(t.rows[2]![3], publishedLaw.alpha)
    expect(t.sources).toEqual(["ablation/cooldown/fit"])
    const optimal = table(data, "cooldown-optimal")
    closeTo(optimal.rows[0]![5], optimum(publishedLaw, num(optimal.rows[0]![1])).loss)
  })

  it("takes the grid's tokens from the branches' lengths", () => {
    const t = table(data, "cooldown-tokens")
    const grid = shapes.reduce((n, s) => n + s.iters.reduce((m, T) => m + T, 0), 0) * perIteration
    expect(t.rows[0]![0]).toBe("grid (the branches from scratch)")
    expect(num(t.rows[0]![2])).toBe(grid)
    expect(t.rows[0]![4]).toBe("-")
    const section = buildReport(data).sections.find((s) => s.id === "cooldown")!
    expect(section.figures.map((f) => f.id)).toEqual(["cooldown-optimal-loss"])
  })
})

describe("reports without a cool-down fit", () => {
  it("leave the section out", () => {
    const data = cooldownData({ grid: true })
    const without = { ...data, records: data.records.filter((r) => r.stageId !== "ablation/cooldown/fit") }
    expect(buildReport(without).sections.map((s) => s.id)).not.toContain("cooldown")
  })
})
