/**
 * Routing over training: how co-activation and specialization change from checkpoint to checkpoint, from
 * the analyses a pipeline runs at every checkpoint (co-activation and specialization per checkpoint, the
 * specialization tracking over all of them). Per scale, a chart over checkpoint steps of each; one table
 * of the same numbers per MoE layer at the first and the final checkpoint; and per scale the tracked
 * tokens of its last MoE layer at every checkpoint, as FLAME-MoE's specialization notebook prints them.
 */
import { coactivationOverTraining } from "../../analysis/coactivationConcentration.ts"
import type { CoactivationResult, SpecializationSummary, SpecializationTracking } from "../../analysis/schema.ts"
import type { Cell, Figure, Table, TokenDecoder } from "../model.ts"
import { tokenLabel } from "../tokens.ts"
import type { Analysed } from "./analysisDocuments.ts"
import { byScale } from "./analysisDocuments.ts"
import type { Point } from "./chart.ts"
import { baseOption, fmt, line, valueAxis, yValueAxis } from "./chart.ts"

export interface RoutingOverTrainingInput {
  /** Co-activation at every checkpoint analysed (a scale with one checkpoint has no evolution to show). */
  readonly coactivation: ReadonlyArray<Analysed<CoactivationResult>>
  readonly specialization: ReadonlyArray<Analysed<SpecializationSummary>>
  readonly tracking: ReadonlyArray<Analysed<SpecializationTracking>>
  readonly tokens: TokenDecoder | undefined
  /** How the section says layers are numbered. */
  readonly numbering: string
}

/** Tracked experts shown per scale: those whose final top token is the most specialised. */
const TRACKED_EXPERTS = 8

const meanOf = (xs: ReadonlyArray<number | null | undefined>): number | null => {
  const present = xs.filter((x): x is number => typeof x === "number")
  return present.length === 0 ? null : present.reduce((a, b) => a + b, 0) / present.length
}

const round = (x: number | null): number | null => (x === null ? null : Number(x.toPrecision(4)))

const span = (first: number | null | undefined, final: number | null | undefined) =>
  `${fmt(first ?? null, 3)} → ${fmt(final ?? null, 3)}`

interface ScaleEvolution {
  readonly scale: string
  readonly coactivation: ReturnType<typeof coactivationOverTraining> | undefined
  readonly coactivationSources: ReadonlyArray<string>
  /** Per-checkpoint summaries, in step order. */
  readonly summaries: ReadonlyArray<Analysed<SpecializationSummary>>
  readonly tracking: Analysed<SpecializationTracking> | undefined
}

const evolutions = (input: RoutingOverTrainingInput): Array<ScaleEvolution> => {
  const coactivation = new Map(byScale(input.coactivation))
  const summaries = new Map(byScale(input.specialization))
  const tracking = new Map(input.tracking.map((t) => [t.doc.scale, t]))
  const scales = [...new Set([...coactivation.keys(), ...summaries.keys(), ...tracking.keys()])]
  return scales.flatMap((scale) => {
    const co = coactivation.get(scale) ?? []
    const sp = summaries.get(scale) ?? []
    const tr = tracking.get(scale)
    // One checkpoint is no evolution: the final-checkpoint figures already show it.
    if (co.length < 2 && sp.length < 2 && (tr === undefined || tr.doc.steps.length < 2)) return []
    return [{
      scale,
      coactivation: co.length < 2 ? undefined : coactivationOverTraining(co.map((c) => c.doc)),
      coactivationSources: co.map((c) => c.record.stageId),
      summaries: sp,
      tracking: tr
    }]
  })
}

const coactivationFigure = (e: ScaleEvolution, numbering: string): Figure | undefined => {
  const co = e.coactivation
  if (co === undefined) return undefined
  const even = 1 / (co.numExperts - 1)
  return {
    id: `coactivation-over-training-${e.scale}`,
    title: `Co-activation over training: ${e.scale}`,
    caption: "Per MoE layer, the mean over experts of the share of an expert's co-activations that go to its most " +
      `frequent partner, from each checkpoint's co-activation matrix (${fmt(even, 3)} when spread evenly over ` +
      `the other ${co.numExperts - 1} experts). Bold: mean over layers; dashed: each layer (${numbering}).`,
    sources: e.coactivationSources,
    option: {
      ...baseOption(true),
      tooltip: { trigger: "axis", confine: true },
      xAxis: valueAxis("checkpoint step"),
      yAxis: yValueAxis("top-partner share", { min: 0 }),
      series: [
        line(
          "mean over layers",
          co.steps.map((s, c): Point => [s, round(meanOf(co.topPartnerShare.map((l) => l[c])))]),
          { showSymbol: true, lineStyle: { width: 2.5 } }
        ),
        ...co.layers.map((layer, l) =>
          line(
            `layer ${layer}`,
            co.steps.map((s, c): Point => [s, round(co.topPartnerShare[l]![c]!)]),
            { lineStyle: { type: "dashed", width: 1 } }
          )
        ),
        line("even spread", co.steps.map((s): Point => [s, round(even)]), {
          lineStyle: { type: "dotted", width: 1, color: "#8a929c" },
          itemStyle: { color: "#8a929c" }
        })
      ]
    }
  }
}

const specializationFigure = (e: ScaleEvolution, numbering: string): Figure | undefined => {
  const tr = e.tracking?.doc
  if (tr === undefined && e.summaries.length < 2) return undefined
  /** Mean over layers at each checkpoint of the tracking. */
  const overLayers = (pick: (l: SpecializationTracking["perLayer"][number], c: number) => number | null | undefined) =>
    tr === undefined ? [] : tr.steps.map((s, c): Point => [s, round(meanOf(tr.perLayer.map((l) => pick(l, c))))])
  const series = [
    ...(tr === undefined ? [] : [
      ...Array.from(
        { length: tr.topTokens },
        (_, rank) =>
          line(`final top-${rank + 1} token's score`, overLayers((l, c) => l.meanTrackedScore[rank]?.[c]), {
            showSymbol: true,
            lineStyle: { width: 2.5 }
          })
      ),
      line("experts with their final top tokens", overLayers((l, c) => l.sameAsFinal[c]), {
        showSymbol: true,
        lineStyle: { type: "dashed", width: 2 }
      }),
      line("experts keeping their top tokens", overLayers((l, c) => l.sameAsPrevious[c]), {
        showSymbol: true,
        lineStyle: { type: "dotted", width: 2 }
      })
    ]),
    ...(e.summaries.length < 2 ? [] : [
      line(
        "mean token max score",
        e.summaries.map(({ doc }): Point => [doc.step, round(meanOf(doc.perLayer.map((l) => l.meanTokenMaxScore)))]),
        { showSymbol: true, lineStyle: { width: 1 } }
      )
    ])
  ]
  return {
    id: `specialization-over-training-${e.scale}`,
    title: `Specialization over training: ${e.scale}`,
    caption: (tr === undefined ?
      "" :
      `Each expert's top ${tr.topTokens} tokens at the final checkpoint (step ${tr.finalStep}), among tokens seen ` +
      `at least ${tr.minOccurrences} times, followed back over the checkpoints as FLAME-MoE does: the mean ` +
      "over experts of the score (occurrences routed to the expert / occurrences) of its final top-1 and " +
      "top-2 token; dashed, the fraction of experts whose top tokens at a checkpoint are the final ones; " +
      "dotted, the fraction that kept their top tokens since the previous checkpoint. ") +
      (e.summaries.length < 2 ? "" : "Thin: the mean over tokens of their highest score over experts. ") +
      `All are means over the MoE layers (${numbering}); the table below gives each layer.`,
    sources: [...(e.tracking ? [e.tracking.record.stageId] : []), ...e.summaries.map((s) => s.record.stageId)],
    option: {
      ...baseOption(true),
      tooltip: { trigger: "axis", confine: true },
      xAxis: valueAxis("checkpoint step"),
      yAxis: yValueAxis("score / fraction of experts", { min: 0, max: 1, scale: false }),
      series
    }
  }
}

/** Per scale and MoE layer: each quantity at the first and at the final checkpoint. */
const layerTable = (list: ReadonlyArray<ScaleEvolution>, numbering: string): Table | undefined => {
  const rows: Array<Array<Cell>> = []
  for (const e of list) {
    const co = e.coactivation
    const tr = e.tracking?.doc
    const layers = [
      ...new Set([
        ...(co?.layers ?? []),
        ...(tr?.layers ?? []),
        ...e.summaries.flatMap((s) => s.doc.layers)
      ])
    ].sort((a, b) => a - b)
    const first = e.summaries[0]?.doc
    const final = e.summaries[e.summaries.length - 1]?.doc
    for (const layer of layers) {
      const c = co?.layers.indexOf(layer) ?? -1
      const t = tr?.perLayer.find((l) => l.layer === layer)
      const tokenMax = (d: SpecializationSummary | undefined) =>
        d?.perLayer.find((l) => l.layer === layer)?.meanTokenMaxScore
      const steps = co?.steps ?? tr?.steps ?? e.summaries.map((s) => s.doc.step)
      rows.push([
        e.scale,
        layer,
        `${steps[0]} → ${steps[steps.length - 1]}`,
        c < 0 ? "-" : span(co!.topPartnerShare[c]![0], co!.topPartnerShare[c]!.at(-1)),
        c < 0 ? "-" : span(co!.maxCoactivation[c]![0], co!.maxCoactivation[c]!.at(-1)),
        t === undefined ? "-" : span(t.meanTrackedScore[0]?.[0], t.meanTrackedScore[0]?.at(-1)),
        t === undefined ? "-" : fmt(t.sameAsFinal[0] ?? null, 3),
        t === undefined ? "-" : fmt(meanOf(t.sameAsPrevious), 3),
        e.summaries.length < 2 ? "-" : span(tokenMax(first), tokenMax(final))
      ])
    }
  }
  if (rows.length === 0) return undefined
  return {
    id: "routing-over-training",
    title: "Routing over training, per MoE layer",
    caption: `First → final checkpoint (${numbering}). Top-partner share and max co-activation: from the ` +
      "co-activation matrices; final top-1 score: the score of each expert's final top token, mean over experts; " +
      "with final tokens at first: fraction of experts whose top tokens at the first checkpoint are the final " +
      "ones; kept between checkpoints: fraction of experts keeping their top tokens from one checkpoint to the " +
      "next, mean over checkpoints; token max score: mean over tokens of their highest score.",
    columns: [
      "scale",
      "layer",
      "steps",
      "top-partner share",
      "max co-activation",
      "final top-1 score",
      "with final tokens at first",
      "kept between checkpoints",
      "token max score"
    ],
    rows,
    sources: list.flatMap((e) => [
      ...e.coactivationSources,
      ...(e.tracking ? [e.tracking.record.stageId] : []),
      ...e.summaries.map((s) => s.record.stageId)
    ])
  }
}

/**
 * The tracked tokens of a scale's last MoE layer at every checkpoint, for the experts whose final top token
 * is the most specialised: what FLAME-MoE's notebook prints per expert (scores, ids, decoded tokens).
 */
const trackedTable = (t: Analysed<SpecializationTracking>, tokens: TokenDecoder | undefined): Table | undefined => {
  const doc = t.doc
  const last = doc.perLayer[doc.perLayer.length - 1]
  if (last === undefined) return undefined
  const experts = last.experts
    .filter((e) => e.tracked.length > 0)
    .sort((a, b) =>
      b.tracked[0]!.scores.at(-1)! - a.tracked[0]!.scores.at(-1)! ||
      b.tracked[0]!.occurrences - a.tracked[0]!.occurrences || a.expert - b.expert
    )
    .slice(0, TRACKED_EXPERTS)
  if (experts.length === 0) return undefined
  return {
    id: `specialization-tracked-${doc.scale}`,
    title: `Tracked tokens over training: ${doc.scale}, layer ${last.layer}`,
    caption: `The ${experts.length} experts of the last MoE layer whose final top token is the most specialised; ` +
      `for each, its final top ${doc.topTokens} tokens (seen at least ${doc.minOccurrences} times) and their score ` +
      "(occurrences routed to the expert / occurrences) at every checkpoint. " +
      (tokens === undefined
        ? "Token ids of the model's vocabulary (no tokenizer was given to the report)."
        : "Tokens as their text, quoted and escaped, then their id."),
    columns: ["expert", "rank", "token", "occurrences", ...doc.steps.map((s) => `step ${s}`)],
    rows: experts.flatMap((e) =>
      e.tracked.map((k, rank) => [
        e.expert,
        rank + 1,
        tokenLabel(tokens, k.token),
        k.occurrences,
        ...k.scores.map((v) => fmt(v, 3))
      ])
    ),
    sources: [t.record.stageId, ...(tokens === undefined ? [] : [tokens.source])]
  }
}

export const routingOverTraining = (
  input: RoutingOverTrainingInput
): { figures: Array<Figure>; tables: Array<Table> } => {
  const list = evolutions(input)
  const figures = list.flatMap((e) =>
    [coactivationFigure(e, input.numbering), specializationFigure(e, input.numbering)].filter((f) => f !== undefined)
  )
  const table = layerTable(list, input.numbering)
  const tracked = list.flatMap((e) => (e.tracking === undefined ? [] : [trackedTable(e.tracking, input.tokens)]))
    .filter((t) => t !== undefined)
  return { figures, tables: [...(table === undefined ? [] : [table]), ...tracked] }
}
