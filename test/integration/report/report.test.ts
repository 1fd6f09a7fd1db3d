/**
 * The ablation pipeline's tiny preset end to end, a small slice of the suite in the same workspace, and
 * their HTML reports (report stages and `flame-pipe report`) opened in headless Chromium: every chart
 * drew its data, the console stayed clean, and the lineage section names the executions.
 */
import Database from "better-sqlite3"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { cli, runJson, tempWorkspace } from "../../support/cli.ts"
import { checkReport } from "./browser.ts"

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
  })

  it("the suite slice's report stage draws training, evaluation, compute and routing figures", async () => {
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
    const check = await checkReport(file, path.join(shots, "suite-slice-report.png"))
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
    // Layers are named by Megatron's number: the tiny scales' first layer is dense, so their first MoE layer
    // (stored index 1 in trace.bin) is layer 2 in the analyses and the report.
    for (const scale of ["flame-moe-38m-tiny-mini", "flame-moe-115m-tiny-mini"]) {
      const output = latestOutput(`analysis/${scale}/coactivation`, "coactivation.json").path
      const coactivation = JSON.parse(fs.readFileSync(path.join(ws, output), "utf8")) as { layers: Array<number> }
      expect(coactivation.layers[0], scale).toBe(2)
    }
    expect(check.text).toContain("first MoE layer is layer 2")
  })

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
