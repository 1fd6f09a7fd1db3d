import { it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect } from "vitest"
import type { SpecializationSummary } from "../../../src/analysis/schema.ts"
import { Lineage } from "../../../src/lineage/Lineage.ts"
import { buildReport } from "../../../src/report/build.ts"
import { collectRecords, factsRequests } from "../../../src/report/collect.ts"
import { renderHtml } from "../../../src/report/html.ts"
import type { SectionBuilder } from "../../../src/report/model.ts"
import { downsample } from "../../../src/report/sections/chart.ts"
import { withSections } from "../../../src/report/sections/index.ts"
import { ablationData, record, suiteData } from "./fixture.ts"

const figureIds = (report: ReturnType<typeof buildReport>) => report.sections.flatMap((s) => s.figures.map((f) => f.id))

const seriesData = (option: Readonly<Record<string, unknown>>): number => {
  const base = (option.baseOption ?? option) as { series?: Array<{ data?: Array<unknown> }> }
  return (base.series ?? []).reduce((n, s) => n + (s.data?.length ?? 0), 0)
}

describe("report sections", () => {
  it("a suite gets training, evaluation, compute, routing and lineage, every figure with data", () => {
    const report = buildReport(suiteData())
    expect(report.sections.map((s) => s.id)).toEqual(["training", "evaluation", "compute", "routing", "lineage"])
    expect(figureIds(report)).toEqual([
      "train-loss",
      "train-lr",
      "val-loss-flops",
      "saturation-s-tiny",
      "load-balance-cv",
      "load-balance-entropy",
      "coactivation-s-tiny",
      "specialization",
      "coactivation-over-training-s-tiny",
      "specialization-over-training-s-tiny"
    ])
    const coactivation = report.sections.flatMap((s) => s.figures).find((f) => f.id === "coactivation-s-tiny")!
    expect(coactivation.title).toContain("step 30")
    expect(coactivation.sources).toEqual(["analysis/s-tiny/coactivation"])
    for (const f of report.sections.flatMap((s) => s.figures)) {
      expect(seriesData(f.option), f.id).toBeGreaterThan(0)
      expect(f.sources.length, f.id).toBeGreaterThan(0)
    }
    // Options are data: they survive JSON unchanged (no functions, no undefined holes that matter).
    for (const f of report.sections.flatMap((s) => s.figures)) {
      expect(JSON.parse(JSON.stringify(f.option))).toEqual(f.option)
    }
  })

  it("the compute figure puts each checkpoint at 6 N D", () => {
    const report = buildReport(suiteData())
    const fig = report.sections.flatMap((s) => s.figures).find((f) => f.id === "val-loss-flops")!
    const series = (fig.option.series as Array<{ data: Array<[number, number]> }>)[0]!
    // 6 x 230000 active x step x 8 sequences x 64 tokens
    expect(series.data.map(([x]) => x)).toEqual([10, 20, 30].map((s) => 6 * 230_000 * s * 8 * 64))
    expect(series.data.map(([, y]) => y)).toEqual([7, 6, 5])
  })

  it("an ablation gets the scaling-law figures and both fits' constants side by side", () => {
    const report = buildReport(ablationData())
    expect(report.sections.map((s) => s.id)).toEqual(["compute", "scaling-law", "lineage"])
    expect(figureIds(report)).toEqual(["ablation-loss-flops", "scaling-iso-flop", "scaling-optimal", "scaling-parity"])
    const fits = report.sections.find((s) => s.id === "scaling-law")!.tables.find((t) => t.id === "scaling-fits")!
    expect(fits.rows.map((r) => r[0])).toEqual([
      "raw parameters (FLAME-MoE)",
      "log parameters",
      "published (evaluated on these runs)"
    ])
    const lineage = report.sections.find((s) => s.id === "lineage")!
    expect(lineage.tables.map((t) => t.id)).toEqual(["lineage-figures", "lineage-executions", "lineage-missing"])
  })

  it("the lineage section names the execution behind every figure and table", () => {
    const data = suiteData()
    const report = buildReport(data)
    const rows = report.sections.find((s) => s.id === "lineage")!.tables[0]!.rows
    for (const section of report.sections.filter((s) => s.id !== "lineage")) {
      for (const item of [...section.figures, ...section.tables]) {
        for (const stage of item.sources) {
          const r = data.records.find((x) => x.stageId === stage)!
          expect(rows.some((row) => row[1] === item.title && row[2] === stage && row[3] === r.execution.id.slice(0, 8)))
            .toBe(true)
        }
      }
    }
  })

  it("takes extra section builders before the lineage section, which then covers them", () => {
    const audit: SectionBuilder = {
      id: "audit",
      build: (data) => ({
        id: "audit",
        title: "Audit",
        figures: [],
        tables: [{
          id: "audit-table",
          title: "Audit results",
          columns: ["stage", "verdict"],
          rows: data.records.map((r) => [r.stageId, "ok"]),
          sources: [data.records[0]!.stageId]
        }]
      })
    }
    const report = buildReport(suiteData(), withSections([audit]))
    expect(report.sections.map((s) => s.id)).toEqual([
      "training",
      "evaluation",
      "compute",
      "routing",
      "audit",
      "lineage"
    ])
    const rows = report.sections.at(-1)!.tables[0]!.rows
    expect(rows.some((r) => r[1] === "Audit results")).toBe(true)
  })

  it("names layers by Megatron's number: the first MoE layer after FLAME-MoE's dense layer 1 is layer 2", () => {
    // The fixture's traces are of a dense-first model: stored (0-based) MoE layer indices 1 and 2.
    const data = suiteData()
    const figures = buildReport(data).sections.flatMap((s) => s.figures)
    const tables = buildReport(data).sections.flatMap((s) => s.tables)
    type Panels = { title: Array<{ text: string }>; series: Array<{ name: string }> }
    const coactivation = figures.find((f) => f.id === "coactivation-s-tiny")!.option as unknown as Panels
    expect(coactivation.title.map((t) => t.text)).toEqual(["layer 2", "layer 3"])
    expect(coactivation.series.map((s) => s.name)).toEqual(["layer 2", "layer 3"])
    const saturation = figures.find((f) => f.id === "saturation-s-tiny")!
    const names = (saturation.option.series as Array<{ name: string }>).map((s) => s.name)
    expect(names.filter((n) => n.startsWith("layer"))).toEqual(["layer 2, k = 1", "layer 3, k = 1"])
    const specialization = figures.find((f) => f.id === "specialization")!
    expect((specialization.option.xAxis as { data: Array<string> }).data).toEqual(["layer 2", "layer 3"])
    const top = tables.find((t) => t.id === "specialization-top")!
    expect(top.rows.length).toBeGreaterThan(0)
    for (const row of top.rows) expect(row[top.columns.indexOf("layer")]).toBe(3)
    for (const f of figures.filter((f) => f.id.includes("coactivation") || f.id.includes("specialization"))) {
      expect(f.caption, f.id).toContain("numbered from 1 as in Megatron")
    }
  })

  it("lines up the specialization bars of scales of different depth by layer number", () => {
    const data = suiteData()
    const shallow = data.records.find((r) => r.kind === "analysis/expert-specialization")!
    const doc = shallow.documents["specialization.json"] as SpecializationSummary
    const extra = { ...doc.perLayer[1]!, layer: 4, meanTokenMaxScore: 0.5 }
    const deeper = record("analysis/s-deep/specialization", "analysis/expert-specialization", {
      documents: {
        "specialization.json": { ...doc, scale: "s-deep", layers: [2, 3, 4], perLayer: [...doc.perLayer, extra] }
      }
    })
    const report = buildReport({ ...data, records: [...data.records, deeper] })
    const fig = report.sections.flatMap((s) => s.figures).find((f) => f.id === "specialization")!
    expect((fig.option.xAxis as { data: Array<string> }).data).toEqual(["layer 2", "layer 3", "layer 4"])
    const series = fig.option.series as Array<{ name: string; data: Array<number | null> }>
    expect(series.map((s) => s.data.length)).toEqual([3, 3])
    expect(series[0]!.data[2]).toBeNull()
    expect(series[1]!.data[2]).toBe(0.5)
  })

  it("names the stage and output of an analysis document that does not decode", () => {
    const data = suiteData()
    const broken = {
      ...data,
      records: [
        record("analysis/x/saturation", "analysis/router-saturation", { documents: { "saturation.json": { nope: 1 } } })
      ]
    }
    expect(() => buildReport(broken)).toThrow(/analysis\/x\/saturation output saturation\.json/)
  })

  it("leaves out what has nothing to show", () => {
    const report = buildReport({ ...suiteData(), records: [record("source/x", "source")] })
    expect(report.sections.map((s) => s.id)).toEqual(["lineage"])
  })
})

describe("the HTML file", () => {
  const html = renderHtml(buildReport(suiteData()))

  it("is self-contained: ECharts inlined, no external scripts, styles or links", () => {
    expect(html).toContain("Apache ECharts 5.6.0")
    expect(html.length).toBeGreaterThan(1_000_000)
    expect(html).not.toMatch(/<script[^>]+src=/)
    expect(html).not.toMatch(/<link[^>]+href=/)
    expect(html).not.toMatch(/<img[^>]+src="?https?:/)
  })

  it("escapes text and embeds figure options as inert JSON", () => {
    expect(html).toContain("<title>suite &lt;test&gt;</title>")
    const data = suiteData()
    const hostile = {
      ...data,
      records: data.records.map((r) =>
        r.kind === "train" ? { ...r, params: { ...r.params as object, scale: "</script><b>x" } } : r
      )
    }
    const out = renderHtml(buildReport(hostile))
    const embedded = out.slice(out.indexOf("id=\"flame-report-figures\">"))
    expect(embedded.slice(0, embedded.indexOf("</script>"))).not.toContain("<b>")
    expect(out).toContain("\\u003c/script>\\u003cb>x")
    const json = embedded.slice("id=\"flame-report-figures\">".length, embedded.indexOf("</script>"))
    expect(Object.keys(JSON.parse(json))).toContain("train-loss")
  })

  it("one chart element per figure, one table element per table", () => {
    const report = buildReport(suiteData())
    const charts = [...html.matchAll(/class="chart" data-figure="([^"]+)"/g)].map((m) => m[1])
    expect(charts).toEqual(figureIds(report))
    const tables = report.sections.flatMap((s) => s.tables.map((t) => t.id))
    for (const t of tables) expect(html).toContain(`<div class="table" id="${t}">`)
  })
})

describe("downsample", () => {
  it("keeps short curves and thins long ones, keeping the last point", () => {
    const short = [[1, 2], [2, 3]] as const
    expect(downsample(short)).toEqual(short)
    const long = Array.from({ length: 10_000 }, (_, i) => [i, i] as const)
    const thin = downsample(long, 1000)
    expect(thin.length).toBeLessThanOrEqual(1001)
    expect(thin[0]).toEqual([0, 0])
    expect(thin.at(-1)).toEqual([9999, 9999])
  })
})

describe("collecting from lineage", () => {
  it.effect("reads an execution's params, result, outputs, inputs with their producer, metrics and JSON outputs", () =>
    Effect.gen(function*() {
      const root = fs.mkdtempSync(path.join(os.tmpdir(), "fp-collect-"))
      fs.mkdirSync(path.join(root, "artifacts/fit"), { recursive: true })
      fs.writeFileSync(path.join(root, "artifacts/fit/fit.json"), JSON.stringify({ answer: 42 }))
      const records = yield* Effect.gen(function*() {
        const lineage = yield* Lineage
        yield* lineage.startRun({
          id: "r1",
          pipeline: "p",
          preset: null,
          overrides: {},
          argv: [],
          executor: "local",
          host: "h",
          pid: 1,
          status: "running",
          startedAt: 1
        })
        const execution = (id: string, stageId: string) => ({
          id,
          runId: "r1",
          stageId,
          fingerprint: id,
          version: "1",
          params: { scale: stageId },
          inputHashes: {},
          status: "running" as const,
          startedAt: 1,
          host: "h",
          executor: "local",
          logPath: "l",
          outputDir: "o"
        })
        yield* lineage.startExecution(execution("e-train", "train/s"), [])
        yield* lineage.finishExecution("e-train", {
          status: "succeeded",
          durationMs: 5,
          result: { activeParams: 7 },
          artifacts: [{
            id: "a-ckpt",
            executionId: "e-train",
            name: "iter_0000002",
            path: "artifacts/train/ckpt",
            kind: "dir",
            hash: "h1",
            size: 10,
            createdAt: 1
          }]
        })
        yield* lineage.appendMetrics([
          { executionId: "e-train", name: "loss", step: 2, value: 4 },
          { executionId: "e-train", name: "loss", step: 1, value: 5 },
          { executionId: "e-train", name: "tokens_per_s", step: 1, value: 9 }
        ])
        yield* lineage.startExecution(execution("e-fit", "fit"), [{ name: "checkpoint", artifactId: "a-ckpt" }])
        yield* lineage.finishExecution("e-fit", {
          status: "succeeded",
          durationMs: 5,
          artifacts: [{
            id: "a-fit",
            executionId: "e-fit",
            name: "fit.json",
            path: "artifacts/fit/fit.json",
            kind: "file",
            hash: "h2",
            size: 20,
            createdAt: 2
          }]
        })
        const targets = [
          { stageId: "train/s", kind: "train", executionId: "e-train" },
          { stageId: "fit", kind: "scaling/fit", executionId: "e-fit" }
        ]
        return collectRecords(yield* lineage.executionFacts(factsRequests(targets)), root, targets)
      }).pipe(Effect.provide(Lineage.Test), Effect.scoped)
      const [train, fit] = records
      expect(train!.metrics).toEqual({ loss: [[1, 5], [2, 4]] })
      expect(train!.result).toEqual({ activeParams: 7 })
      expect(train!.outputs.map((o) => o.name)).toEqual(["iter_0000002"])
      expect(fit!.documents["fit.json"]).toEqual({ answer: 42 })
      expect(fit!.inputs).toEqual([
        expect.objectContaining({
          input: "checkpoint",
          producerStage: "train/s",
          producerExecution: "e-train",
          hash: "h1"
        })
      ])
      fs.rmSync(root, { recursive: true, force: true })
    }))
})
