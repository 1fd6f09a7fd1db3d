/**
 * The routing section's additions: co-activation and specialization over training (numbers checked against
 * naive computations from the analyses' documents), every MoE layer's co-activation at once, and token ids
 * decoded with the run's tokenizer.
 */
import { it } from "@effect/vitest"
import { Effect } from "effect"
import { describe, expect } from "vitest"
import type { CoactivationResult, SpecializationSummary, SpecializationTracking } from "../../../src/analysis/schema.ts"
import { fromRoot } from "../../../src/ProjectRoot.ts"
import { buildReport } from "../../../src/report/build.ts"
import type { Figure, ReportData, Table } from "../../../src/report/model.ts"
import { fmt } from "../../../src/report/sections/chart.ts"
import { coactivationFigures } from "../../../src/report/sections/coactivationFigure.ts"
import { quoteToken, tokenLabel } from "../../../src/report/tokens.ts"
import { loadTokenizer } from "../../../src/tokenize/Tokenizer.ts"
import { suiteData } from "./fixture.ts"

const SCALE = "s-tiny"
const data = suiteData()
const report = buildReport(data)
const figures = report.sections.flatMap((s) => s.figures)
const tables = report.sections.flatMap((s) => s.tables)
const figure = (id: string): Figure => figures.find((f) => f.id === id)!
const table = (id: string): Table => tables.find((t) => t.id === id)!
const docsOf = <D>(kind: string, output: string): Array<{ stageId: string; doc: D }> =>
  data.records.filter((r) => r.kind === kind).map((r) => ({ stageId: r.stageId, doc: r.documents[output] as D }))

type Series = { name: string; data: Array<[number, number | null]> }
const seriesOf = (f: Figure, name: string) => (f.option.series as Array<Series>).find((s) => s.name === name)!
const mean = (xs: ReadonlyArray<number>) => xs.reduce((a, b) => a + b, 0) / xs.length

const coactivation = docsOf<CoactivationResult>("analysis/expert-coactivation", "coactivation.json")
  .sort((a, b) => a.doc.step - b.doc.step)
const summaries = docsOf<SpecializationSummary>("analysis/expert-specialization", "specialization.json")
  .sort((a, b) => a.doc.step - b.doc.step)
const tracking = docsOf<SpecializationTracking>("analysis/specialization-tracking", "specialization-tracking.json")[0]!
  .doc

/** Straight from a matrix: per row, its largest entry over its sum; mean over the rows that have any. */
const naiveShare = (matrix: ReadonlyArray<ReadonlyArray<number>>) => {
  const shares = matrix.flatMap((row, i) => {
    const others = row.filter((_, j) => j !== i)
    const sum = others.reduce((a, b) => a + b, 0)
    return sum > 0 ? [Math.max(...others) / sum] : []
  })
  return mean(shares)
}

describe("routing over training", () => {
  it("the fixture analyses three checkpoints", () => {
    expect(coactivation.map((c) => c.doc.step)).toEqual([10, 20, 30])
    expect(summaries.map((c) => c.doc.step)).toEqual([10, 20, 30])
    expect(tracking.steps).toEqual([10, 20, 30])
  })

  it("plots each checkpoint's co-activation concentration, from every checkpoint's analysis", () => {
    const f = figure(`coactivation-over-training-${SCALE}`)
    expect(f.sources).toEqual(coactivation.map((c) => c.stageId))
    const meanLine = seriesOf(f, "mean over layers")
    expect(meanLine.data.map(([x]) => x)).toEqual([10, 20, 30])
    coactivation.forEach(({ doc }, c) => {
      const expected = mean(doc.matrix.map(naiveShare))
      expect(meanLine.data[c]![1]).toBeCloseTo(expected, 3)
      doc.layers.forEach((layer, l) =>
        expect(seriesOf(f, `layer ${layer}`).data[c]![1]).toBeCloseTo(naiveShare(doc.matrix[l]!), 3)
      )
    })
    // The synthetic checkpoints grow more concentrated towards the final one.
    expect(meanLine.data[2]![1]!).toBeGreaterThan(meanLine.data[0]![1]!)
  })

  it("plots the tracked tokens' scores and how many experts keep their top tokens", () => {
    const f = figure(`specialization-over-training-${SCALE}`)
    expect(f.sources).toContain(`analysis/${SCALE}/specialization-tracking`)
    expect(f.sources).toContain(`analysis/${SCALE}/specialization/10`)
    const final = tracking.steps.length - 1
    tracking.steps.forEach((_, c) => {
      // From the experts themselves, not from the tracking's own layer means.
      const top1 = mean(
        tracking.perLayer.map((l) =>
          mean(l.experts.filter((e) => e.tracked.length > 0).map((e) => e.tracked[0]!.scores[c]!))
        )
      )
      expect(seriesOf(f, "final top-1 token's score").data[c]![1]).toBeCloseTo(top1, 3)
      const sameSet = (a: ReadonlyArray<number>, b: ReadonlyArray<number>) =>
        [...a].sort().join() === [...b].sort().join()
      const withFinal = mean(tracking.perLayer.map((l) => {
        const experts = l.experts.filter((e) => e.top[final]!.length > 0)
        return mean(experts.map((e) => (sameSet(e.top[c]!, e.top[final]!) ? 1 : 0)))
      }))
      expect(seriesOf(f, "experts with their final top tokens").data[c]![1]).toBeCloseTo(withFinal, 3)
      const tokenMax = mean(summaries[c]!.doc.perLayer.map((l) => l.meanTokenMaxScore))
      expect(seriesOf(f, "mean token max score").data[c]![1]).toBeCloseTo(tokenMax, 3)
    })
    expect(seriesOf(f, "experts keeping their top tokens").data[0]![1]).toBeNull()
    expect(seriesOf(f, "experts with their final top tokens").data[final]![1]).toBe(1)
  })

  it("tabulates each layer at the first and the final checkpoint", () => {
    const t = table("routing-over-training")
    expect(t.rows.map((r) => [r[0], r[1]])).toEqual([[SCALE, 2], [SCALE, 3]])
    const col = (name: string) => t.columns.indexOf(name)
    t.rows.forEach((row, l) => {
      const first = coactivation[0]!.doc
      const last = coactivation[2]!.doc
      expect(row[col("steps")]).toBe("10 → 30")
      expect(row[col("top-partner share")]).toBe(
        `${fmt(naiveShare(first.matrix[l]!), 3)} → ${fmt(naiveShare(last.matrix[l]!), 3)}`
      )
      const maxOff = (m: ReadonlyArray<ReadonlyArray<number>>) =>
        Math.max(...m.flatMap((r, i) => r.filter((_, j) => j !== i)))
      expect(row[col("max co-activation")]).toBe(
        `${fmt(maxOff(first.matrix[l]!), 3)} → ${fmt(maxOff(last.matrix[l]!), 3)}`
      )
    })
    expect(t.sources).toContain(`analysis/${SCALE}/coactivation/20`)
  })

  it("lists the tracked tokens of the last MoE layer at every checkpoint, decoded", () => {
    const t = table(`specialization-tracked-${SCALE}`)
    expect(t.columns).toEqual(["expert", "rank", "token", "occurrences", "step 10", "step 20", "step 30"])
    expect(t.sources).toEqual([`analysis/${SCALE}/specialization-tracking`, "source/tokenizer"])
    const last = tracking.perLayer[tracking.perLayer.length - 1]!
    expect(t.title).toContain(`layer ${last.layer}`)
    const experts = [...new Set(t.rows.map((r) => r[0]))]
    expect(experts.length).toBe(8)
    // The most specialised final top tokens first.
    const finals = experts.map((e) => last.experts[e as number]!.tracked[0]!.scores[2]!)
    expect(finals).toEqual([...finals].sort((a, b) => b - a))
    for (const row of t.rows) {
      const tracked = last.experts[row[0] as number]!.tracked[(row[1] as number) - 1]!
      expect(row[2]).toBe(tokenLabel(data.tokens, tracked.token))
      expect(row[2]).toMatch(/^".*" \(\d+\)$/)
      expect(row.slice(4)).toEqual(tracked.scores.map((v) => fmt(v, 3)))
    }
  })

  it("a pipeline that analyses the final checkpoint only gets the final-checkpoint figures alone", () => {
    const finalOnly: ReportData = {
      ...data,
      records: data.records.filter((r) => !/\/\d+$/.test(r.stageId) && r.kind !== "analysis/specialization-tracking")
    }
    const built = buildReport(finalOnly)
    const ids = built.sections.flatMap((s) => [...s.figures, ...s.tables].map((x) => x.id))
    expect(ids).toContain(`coactivation-${SCALE}`)
    expect(ids).toContain("specialization-top")
    expect(ids.filter((id) => id.includes("over-training") || id.includes("tracked"))).toEqual([])
  })
})

describe("co-activation of every MoE layer at once", () => {
  const result = (layers: number): CoactivationResult => ({
    analysis: "expertCoactivation",
    scale: "deep",
    step: 100,
    layers: Array.from({ length: layers }, (_, l) => l + 2),
    numExperts: 4,
    tokens: 10,
    activations: Array.from({ length: layers }, () => [1, 1, 1, 1]),
    matrix: Array.from(
      { length: layers },
      (_, l) => [0, 1, 2, 3].map((i) => [0, 1, 2, 3].map((j) => (i === j ? 0 : (l + 1) / 20)))
    )
  })
  type Option = {
    timeline?: unknown
    options?: unknown
    title: Array<{ text: string }>
    grid: Array<{ left: string; width: string; top: number; height: number }>
    series: Array<{ type: string; xAxisIndex: number; yAxisIndex: number; data: Array<unknown> }>
    visualMap: { max: number }
  }

  it("draws one panel per layer side by side, no slider, in one colour scale", () => {
    const [f] = coactivationFigures(result(3), "analysis/deep/coactivation", "numbered")
    const o = f!.option as unknown as Option
    expect(f!.id).toBe("coactivation-deep")
    expect(o.timeline).toBeUndefined()
    expect(o.options).toBeUndefined()
    expect(o.title.map((t) => t.text)).toEqual(["layer 2", "layer 3", "layer 4"])
    expect(o.series.map((s) => [s.type, s.xAxisIndex, s.yAxisIndex])).toEqual([
      ["heatmap", 0, 0],
      ["heatmap", 1, 1],
      ["heatmap", 2, 2]
    ])
    expect(o.series.every((s) => s.data.length === 12)).toBe(true)
    // Panels share a row and do not overlap; all lie within the chart's width.
    const spans = o.grid.map((g) => [parseFloat(g.left), parseFloat(g.left) + parseFloat(g.width)] as const)
    expect(new Set(o.grid.map((g) => g.top)).size).toBe(1)
    for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThan(spans[i - 1]![1])
    expect(spans[0]![0]).toBeGreaterThanOrEqual(0)
    expect(spans[spans.length - 1]![1]).toBeLessThanOrEqual(100)
    expect(o.visualMap.max).toBe(0.15)
  })

  it("spreads a deep model's layers over figures of at most two rows, each layer once", () => {
    const figs = coactivationFigures(result(17), "analysis/deep/coactivation", "numbered")
    expect(figs.map((f) => f.id)).toEqual([
      "coactivation-deep-layers-2-9",
      "coactivation-deep-layers-10-17",
      "coactivation-deep-layers-18-18"
    ])
    const titles = figs.flatMap((f) => (f.option as unknown as Option).title.map((t) => t.text))
    expect(titles).toEqual(Array.from({ length: 17 }, (_, l) => `layer ${l + 2}`))
    for (const f of figs) {
      const o = f.option as unknown as Option
      expect(new Set(o.grid.map((g) => g.top)).size).toBeLessThanOrEqual(2)
      expect(f.height!).toBeLessThan(700)
      // One colour scale across the figures: the deepest layer's value is every figure's maximum.
      expect(o.visualMap.max).toBe(0.85)
      for (const g of o.grid) expect(g.top + g.height).toBeLessThan(f.height!)
    }
  })
})

describe("token ids as text", () => {
  it.effect("decodes with the run's tokenizer: quoted, escaped, then the id", () =>
    Effect.gen(function*() {
      const tokenizer = yield* loadTokenizer(fromRoot("fixtures", "tokenizer", "tokenizer.json"))
      const top = table("specialization-top")
      expect(top.columns).toContain("token")
      expect(top.sources).toContain("source/tokenizer")
      expect(top.rows.length).toBeGreaterThan(0)
      for (const row of top.rows) {
        const cell = row[top.columns.indexOf("token")] as string
        const [, quoted, id] = /^(".*") \((\d+)\)$/.exec(cell)!
        // The quoted text reads back (as a JSON string) as the token's text.
        expect(JSON.parse(quoted!)).toBe(tokenizer.decode([Number(id)]))
      }
      const decoder = data.tokens!
      const the = tokenizer.encode(" the")
      expect(the.length).toBe(1)
      expect(tokenLabel(decoder, the[0]!)).toBe(`" the" (${the[0]})`)
      // The model pads its vocabulary past the tokenizer's: those ids have no text.
      expect(tokenLabel(decoder, tokenizer.vocabSize)).toBe(`<no token> (${tokenizer.vocabSize})`)
      expect(tokenLabel(undefined, 42)).toBe("42")
    }))

  it("escapes what would not read as itself", () => {
    expect(quoteToken("say \"hi\"\n")).toBe(String.raw`"say \"hi\"\n"`)
    expect(quoteToken("a\\b\tc")).toBe(String.raw`"a\\b\tc"`)
    expect(quoteToken("\u200bx\u00a0\u2028")).toBe(String.raw`"\u200bx\u00a0\u2028"`)
    expect(quoteToken("naïve ✓")).toBe("\"naïve ✓\"")
  })

  it("without a tokenizer, tables show the ids and say so", () => {
    const { tokens: _, ...bare } = data
    const built = buildReport(bare)
    const top = built.sections.flatMap((s) => s.tables).find((t) => t.id === "specialization-top")!
    expect(top.caption).toContain("no tokenizer")
    for (const row of top.rows) expect(String(row[top.columns.indexOf("token")])).toMatch(/^\d+$/)
    expect(top.sources).not.toContain("source/tokenizer")
  })
})

describe("y-axis titles", () => {
  it("sit above the axis in every chart, where tick labels of any width cannot reach them", () => {
    for (const f of figures.filter((f) => f.option.yAxis !== undefined)) {
      const axes = [f.option.yAxis].flat() as Array<{ name?: string; nameLocation?: string }>
      for (const a of axes.filter((a) => a.name !== undefined)) expect(a.nameLocation, f.id).toBe("end")
    }
    expect(figures.some((f) => f.id === "train-lr")).toBe(true)
  })
})
