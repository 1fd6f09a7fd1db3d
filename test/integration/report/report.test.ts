/**
 * The ablation pipeline's tiny preset end to end, a small slice of the suite in the same workspace, and
 * their HTML reports (report stages and `flame-pipe report`) opened in headless Chromium: every chart
 * drew its data, the console stayed clean, and the lineage section names the executions. The layout is
 * measured in the browser, on screen and under print media at a sheet's width: no y-axis title runs into
 * its tick labels, every MoE layer's co-activation is on the page at once, no table is cut off, and the
 * specialization tables show tokens as text.
 */
import { it } from "@effect/vitest"
import Database from "better-sqlite3"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect } from "vitest"
import { fromRoot } from "../../../src/ProjectRoot.ts"
import { loadTokenizer } from "../../../src/tokenize/Tokenizer.ts"
import { cli, runJson, tempWorkspace } from "../../support/cli.ts"
import { checkReport, type LayoutCheck, type PageCheck, PRINT_WIDTH } from "./browser.ts"

const ws = tempWorkspace("fp-report-")
const shots = fs.mkdtempSync(path.join(os.tmpdir(), "fp-report-screenshots-"))
const ablation = ["ablation", "--preset", "tiny", "--workspace", ws]
const mini = [path.join(import.meta.dirname, "mini-lifecycle.ts"), "--workspace", ws]

/** Workspace path of a stage's latest output, and the execution that wrote it. */
const latestOutput = (stage: string, name: string) => {
  const db = new Database(path.join(ws, "lineage.sqlite"), { readonly: true })
  try {
    return db.prepare(`
      select a.path, e.id as execution from artifacts a join executions e on a.execution_id = e.id
      where e.stage_id = ? and a.name = ? and e.status = 'succeeded' order by e.started_at desc limit 1`).get(
      stage,
      name
    ) as { path: string; execution: string }
  } finally {
    db.close()
  }
}

const expectAllDrawn = (check: Awaited<ReturnType<typeof checkReport>>) => {
  expect(check.problems).toEqual([])
  expect(check.charts.length).toBeGreaterThan(0)
  for (const chart of check.charts) {
    expect(chart.series, chart.figure).toBeGreaterThan(0)
    expect(chart.dataPoints, chart.figure).toBeGreaterThan(0)
    expect(chart.paintedPixels, chart.figure).toBeGreaterThan(2000)
  }
}

/** No y-axis title meets a tick label, and none is cut off at the chart's left edge. */
const expectClearAxes = (layout: LayoutCheck, where: string) => {
  for (const chart of layout.charts) {
    for (const axis of chart.yAxes) {
      expect(axis.nameBox, `${where} ${chart.figure}: '${axis.name}' drawn`).not.toBeNull()
      expect(axis.overlaps, `${where} ${chart.figure}: '${axis.name}' over tick labels`).toEqual([])
      expect(axis.nameBox!.x, `${where} ${chart.figure}: '${axis.name}' inside`).toBeGreaterThanOrEqual(0)
    }
  }
}

/** Under print media at a sheet's width, nothing is wider than the sheet and no table hides columns. */
const expectFitsThePage = (check: PageCheck) => {
  const print = check.print
  expect(print.pageWidth).toBe(PRINT_WIDTH)
  expect(print.overflowing).toEqual([])
  expect(print.documentWidth).toBeLessThanOrEqual(print.pageWidth)
  for (const t of print.tables) {
    expect(t.scrollWidth, `table ${t.id}`).toBeLessThanOrEqual(t.clientWidth + 1)
    expect(t.right, `table ${t.id}`).toBeLessThanOrEqual(print.pageWidth + 1)
  }
  for (const c of print.charts) {
    expect(c.box.x + c.box.width, `chart ${c.figure}`).toBeLessThanOrEqual(print.pageWidth + 1)
  }
}

describe("reports", () => {
  let ablationRun: Awaited<ReturnType<typeof runJson>>
  let miniRun: Awaited<ReturnType<typeof runJson>>

  beforeAll(async () => {
    ablationRun = await runJson(ablation)
    miniRun = await runJson(mini)
  }, 900_000)

  afterAll(() => {
    // Checkpoints of 80 runs take most of a GB; the screenshots are kept.
    fs.rmSync(ws, { recursive: true, force: true })
    console.log(`report screenshots in ${shots}`)
  })

  it("the ablation's tiny preset trains and validates 80 runs and fits both parameterisations", () => {
    expect(ablationRun.result.exitCode, ablationRun.result.stderr.slice(-3000)).toBe(0)
    const stages = ablationRun.summary!.stages.map((s) => s.stage)
    expect(stages.filter((s) => s.startsWith("ablation/train/"))).toHaveLength(80)
    expect(stages.filter((s) => s.startsWith("ablation/val-loss/"))).toHaveLength(80)
    const fit = JSON.parse(fs.readFileSync(path.join(ws, latestOutput("ablation/fit", "fit.json").path), "utf8")) as {
      runs: Array<{ loss: number; activeParams: number; tokens: number }>
      budgets: Array<unknown>
      fits: Array<{ method: string; objective: number; computeOptimal: Array<unknown>; isoFlop: Array<unknown> }>
    }
    expect(fit.runs).toHaveLength(80)
    expect(new Set(fit.runs.map((r) => r.activeParams)).size).toBe(16)
    for (const r of fit.runs) expect(r.loss).toBeGreaterThan(0)
    expect(fit.fits.map((f) => f.method)).toEqual(["raw", "log"])
    for (const f of fit.fits) {
      expect(Number.isFinite(f.objective)).toBe(true)
      expect(f.computeOptimal).toHaveLength(5)
      expect(f.isoFlop).toHaveLength(5)
    }
  })

  it("the ablation's report stage draws every figure", async () => {
    const file = path.join(ws, latestOutput("ablation/report", "report.html").path)
    const check = await checkReport(file, path.join(shots, "ablation-report.png"))
    expectAllDrawn(check)
    expect(check.charts.map((c) => c.figure).sort()).toEqual(
      ["ablation-loss-flops", "scaling-iso-flop", "scaling-optimal", "scaling-parity", "train-loss", "train-lr"]
    )
    expect(check.tables).toEqual(expect.arrayContaining(["scaling-fits", "scaling-optimal-table", "lineage-figures"]))
    // The lineage section names the fit's execution next to the figures drawn from it.
    const fitExecution = latestOutput("ablation/fit", "fit.json").execution
    expect(check.text).toContain(fitExecution.slice(0, 8))
    // The learning rate's tick labels ("0.0025") and N*(C)'s ("1,000,000,000") are the widest: measured
    // in the page, no axis title touches them, on screen or printed.
    const lr = check.screen.charts.find((c) => c.figure === "train-lr")!
    expect(lr.yAxes.map((a) => a.name)).toEqual(["learning rate"])
    expect(lr.yAxes[0]!.labelBoxes.length).toBeGreaterThan(2)
    expectClearAxes(check.screen, "screen")
    expectClearAxes(check.print, "print")
    expectFitsThePage(check)
  })

  // Drives headless Chromium: the test runs with the live clock and services.
  it.live("the suite slice's report stage draws training, evaluation, compute and routing figures", () =>
    Effect.gen(function*() {
      expect(miniRun.result.exitCode, miniRun.result.stderr.slice(-3000)).toBe(0)
      // Data and worker stages were the ablation's: nothing compiled or tokenized again (only the merge of
      // the tokenized shards runs: the ablation reads them blended).
      const cached = miniRun.summary!.stages.filter((s) => s.status === "cached").map((s) => s.stage)
      expect(cached).toContain("compile-kernels")
      expect(cached.filter((s) => s.startsWith("tokenize/")).length).toBeGreaterThan(0)
      expect(
        miniRun.summary!.stages.filter((s) => s.stage.startsWith("tokenize/") && s.status !== "cached")
          .map((s) => s.stage)
      ).toEqual(["tokenize/merge"])
      const file = path.join(ws, latestOutput("mini/report", "report.html").path)
      const check = yield* Effect.promise(() => checkReport(file, path.join(shots, "suite-slice-report.png")))
      expectAllDrawn(check)
      const figures = check.charts.map((c) => c.figure)
      for (const scale of ["flame-moe-38m-tiny-mini", "flame-moe-115m-tiny-mini"]) {
        expect(figures).toContain(`saturation-${scale}`)
        expect(figures).toContain(`coactivation-${scale}`)
      }
      expect(figures).toEqual(
        expect.arrayContaining([
          "train-loss",
          "train-lr",
          "val-loss-flops",
          "load-balance-cv",
          "load-balance-entropy",
          "specialization"
        ])
      )
      expect(check.tables).toEqual(expect.arrayContaining(["eval-table", "specialization-top", "lineage-executions"]))
      expect(check.text).toContain("eval/flame-moe-115m-tiny-mini/6")

      // Routing over training: every checkpoint's co-activation and specialization, and the tracking.
      for (const scale of ["flame-moe-38m-tiny-mini", "flame-moe-115m-tiny-mini"]) {
        expect(figures).toContain(`coactivation-over-training-${scale}`)
        expect(figures).toContain(`specialization-over-training-${scale}`)
        expect(check.tables).toContain(`specialization-tracked-${scale}`)
        const over = check.charts.find((c) => c.figure === `coactivation-over-training-${scale}`)!
        // A point per checkpoint on each line: steps 2, 4 and 6.
        expect(over.dataPoints % 3, scale).toBe(0)
      }
      expect(check.tables).toContain("routing-over-training")

      // Every MoE layer's co-activation at once, side by side (no slider), on screen and printed.
      for (const scale of ["flame-moe-38m-tiny-mini", "flame-moe-115m-tiny-mini"]) {
        const output = latestOutput(`analysis/${scale}/coactivation`, "coactivation.json").path
        const { layers } = JSON.parse(fs.readFileSync(path.join(ws, output), "utf8")) as { layers: Array<number> }
        expect(layers.length, scale).toBeGreaterThan(1)
        for (const layout of [check.screen, check.print]) {
          const chart = layout.charts.find((c) => c.figure === `coactivation-${scale}`)!
          expect(chart.timeline, scale).toBe(false)
          expect(chart.heatmaps, scale).toBe(layers.length)
          expect(chart.grids.length, scale).toBe(layers.length)
          for (const grid of chart.grids) {
            expect(grid.inside, `${scale} panel`).toBe(true)
            // Each panel is coloured in (a tiny model's matrices hold many zeros and faint cells, drawn white
            // or nearly so): its layer was drawn, not left blank.
            expect(grid.paintedPixels, `${scale} panel`).toBeGreaterThan(0.05 * grid.rect.width * grid.rect.height)
          }
        }
      }

      // Specialization tables show tokens as text, decoded with the run's tokenizer, then the id.
      const tokenizer = yield* loadTokenizer(fromRoot("fixtures", "tokenizer", "tokenizer.json"))
      const tokenCells = check.screen.tables
        .filter((t) => t.id === "specialization-top" || t.id.startsWith("specialization-tracked-"))
        .flatMap((t) => t.rows.map((r) => r.find((c) => /^(".*"|<no token>) \(\d+\)$/.test(c))))
      expect(tokenCells.length).toBeGreaterThan(4)
      for (const cell of tokenCells) {
        expect(cell).toBeDefined()
        const [, quoted, id] = /^(.*) \((\d+)\)$/.exec(cell!)!
        // The quoted text reads back (as a JSON string) as the token's text.
        if (Number(id) < tokenizer.vocabSize) expect(JSON.parse(quoted!)).toBe(tokenizer.decode([Number(id)]))
        else expect(quoted).toBe("<no token>")
      }

      expectClearAxes(check.screen, "screen")
      expectClearAxes(check.print, "print")
      expectFitsThePage(check)
      // Layers are named by Megatron's number: the tiny scales' first layer is dense, so their first MoE layer
      // (stored index 1 in trace.bin) is layer 2 in the analyses and the report.
      for (const scale of ["flame-moe-38m-tiny-mini", "flame-moe-115m-tiny-mini"]) {
        const output = latestOutput(`analysis/${scale}/coactivation`, "coactivation.json").path
        const coactivation = JSON.parse(fs.readFileSync(path.join(ws, output), "utf8")) as { layers: Array<number> }
        expect(coactivation.layers[0], scale).toBe(2)
      }
      expect(check.text).toContain("first MoE layer is layer 2")
    }))

  it("flame-pipe report writes the pipeline's report from the workspace", async () => {
    const out = path.join(shots, "ablation-cli.html")
    const result = await cli(["report", ...ablation, "--output", out, "--json"])
    expect(result.exitCode, result.stderr).toBe(0)
    const summary = JSON.parse(result.stdout) as { executions: number; stale: number; missing: number }
    expect(summary).toMatchObject({ stale: 0, missing: 0 })
    expect(summary.executions).toBe(ablationRun.summary!.stages.length)
    const check = await checkReport(out, path.join(shots, "ablation-cli.png"))
    expectAllDrawn(check)
    expect(check.charts.map((c) => c.figure)).toContain("scaling-iso-flop")
  })

  it("a pipeline that has not run has no report, and says what to run", async () => {
    const empty = tempWorkspace("fp-report-empty-")
    const result = await cli(["report", "ablation", "--preset", "tiny", "--workspace", empty])
    expect(result.exitCode).toBe(1)
    expect(result.stderr).toContain("nothing of this pipeline has run")
    expect(result.stderr).toContain("flame-pipe run ablation --preset tiny")
    expect(fs.existsSync(path.join(empty, "reports"))).toBe(false)
    fs.rmSync(empty, { recursive: true, force: true })
  })

  it("a second run of the ablation executes nothing", async () => {
    const again = await runJson(ablation)
    expect(again.summary?.executed).toBe(0)
  })
})
