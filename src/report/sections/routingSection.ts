/**
 * Routing: router saturation along training, load balance over training, expert co-activation (every MoE
 * layer at once) and specialization at the final checkpoint, and, where a pipeline analyses every
 * checkpoint, how co-activation and specialization change over training (routingOverTraining.ts). Layers
 * are named by the numbers the analyses write: Megatron's 1-based layer_number
 * (src/analysis/layerNumber.ts), so FLAME-MoE's first MoE layer is "layer 2". Token ids are shown decoded
 * with the run's tokenizer when the report has it.
 */
import {
  CoactivationResult,
  LoadBalanceResult,
  SaturationResult,
  SpecializationSummary,
  SpecializationTracking
} from "../../analysis/schema.ts"
import type { Figure, SectionBuilder, Table } from "../model.ts"
import { tokenLabel } from "../tokens.ts"
import { analyses, finalPerScale } from "./analysisDocuments.ts"
import type { Point } from "./chart.ts"
import { baseOption, fmt, line, mean, valueAxis, yValueAxis } from "./chart.ts"
import { coactivationFigures } from "./coactivationFigure.ts"
import { routingOverTraining } from "./routingOverTraining.ts"

/** Said wherever the section names a layer. */
const NUMBERING = "layers numbered from 1 as in Megatron"

export const routingSection: SectionBuilder = {
  id: "routing",
  build: (data) => {
    const saturation = analyses(data, "analysis/router-saturation", "saturation.json", SaturationResult)
    const load = analyses(data, "analysis/load-balance", "load-balance.json", LoadBalanceResult)
    // Pipelines may compute these at every checkpoint: the final one of each scale is shown as before, and
    // all of them over training.
    const coactivationAll = analyses(data, "analysis/expert-coactivation", "coactivation.json", CoactivationResult)
    const specializationAll = analyses(
      data,
      "analysis/expert-specialization",
      "specialization.json",
      SpecializationSummary
    )
    const tracking = analyses(
      data,
      "analysis/specialization-tracking",
      "specialization-tracking.json",
      SpecializationTracking
    )
    const coactivation = finalPerScale(coactivationAll)
    const specialization = finalPerScale(specializationAll)
    if (saturation.length + load.length + coactivation.length + specialization.length + tracking.length === 0) {
      return undefined
    }
    const figures: Array<Figure> = []
    const tables: Array<Table> = []

    for (const { doc, record } of saturation) {
      figures.push({
        id: `saturation-${doc.scale}`,
        title: `Router saturation: ${doc.scale}`,
        caption: `Fraction of each token's top-k experts at a checkpoint that are among its top-k at the final ` +
          `checkpoint (step ${doc.finalStep}), averaged over ${doc.tokens} held-out tokens and the ` +
          `${doc.layers.length} MoE layers (dashed: each layer, k = ${doc.ks[doc.ks.length - 1]}; ${NUMBERING}).`,
        sources: [record.stageId],
        option: {
          ...baseOption(true),
          tooltip: { trigger: "axis", confine: true },
          xAxis: valueAxis("checkpoint step"),
          yAxis: yValueAxis("saturation", { min: 0, max: 1, scale: false }),
          series: [
            ...doc.ks.map((k, ki) =>
              line(`k = ${k}`, doc.steps.map((s, c): Point => [s, mean(doc.saturation.map((l) => l[c]![ki]!))]), {
                showSymbol: true,
                lineStyle: { width: 2.5 }
              })
            ),
            ...doc.layers.map((layer, l) =>
              line(
                `layer ${layer}, k = ${doc.ks[doc.ks.length - 1]}`,
                doc.steps.map((s, c): Point => [s, doc.saturation[l]![c]![doc.ks.length - 1]!]),
                { lineStyle: { type: "dashed", width: 1 } }
              )
            )
          ]
        }
      })
    }

    if (load.length > 0) {
      const overTraining = (
        id: string,
        title: string,
        axis: string,
        pick: (d: (typeof load)[number]["doc"]) => ReadonlyArray<ReadonlyArray<number>>,
        caption: string
      ): Figure => ({
        id,
        title,
        caption,
        sources: load.map((l) => l.record.stageId),
        option: {
          ...baseOption(true),
          tooltip: { trigger: "axis", confine: true },
          xAxis: valueAxis("checkpoint step"),
          yAxis: yValueAxis(axis),
          series: load.map(({ doc }) => {
            const perLayer = pick(doc)
            return line(doc.scale, doc.steps.map((s, c): Point => [s, mean(perLayer.map((l) => l[c]!))]), {
              showSymbol: true
            })
          })
        }
      })
      figures.push(
        overTraining(
          "load-balance-cv",
          "Load balance over training: coefficient of variation",
          "CV of tokens per expert",
          (d) => d.cv,
          "Standard deviation over mean of the token-slots each expert receives, averaged over MoE layers (0 = even)."
        ),
        overTraining(
          "load-balance-entropy",
          "Load balance over training: normalised entropy",
          "entropy / ln(experts)",
          (d) => d.normalizedEntropy,
          "Entropy of the fraction of token-slots per expert over ln(number of experts), averaged over MoE layers " +
            "(1 = perfectly even)."
        )
      )
    }

    for (const { doc, record } of coactivation) figures.push(...coactivationFigures(doc, record.stageId, NUMBERING))

    if (specialization.length > 0) {
      // Scales differ in depth: the axis is every MoE layer number any of them has, in order.
      const layerNumbers = [...new Set(specialization.flatMap((s) => s.doc.perLayer.map((l) => l.layer)))]
        .sort((a, b) => a - b)
      figures.push({
        id: "specialization",
        title: "Expert specialization",
        caption: "Per MoE layer, the mean over tokens seen at least minOccurrences times of their highest " +
          `routed / occurrences ratio over experts: 1 when some expert takes every occurrence of a token (${NUMBERING}).`,
        sources: specialization.map((s) => s.record.stageId),
        option: {
          ...baseOption(true),
          tooltip: { trigger: "axis", confine: true },
          xAxis: {
            type: "category",
            data: layerNumbers.map((n) => `layer ${n}`),
            name: "layer (Megatron number)",
            nameLocation: "middle",
            nameGap: 30
          },
          yAxis: yValueAxis("mean max specialization", { min: 0, max: 1, scale: false }),
          series: specialization.map(({ doc }) => ({
            name: doc.scale,
            type: "bar",
            data: layerNumbers.map((n) => {
              const l = doc.perLayer.find((p) => p.layer === n)
              return l === undefined ? null : Number(l.meanTokenMaxScore.toPrecision(4))
            })
          }))
        }
      })
      tables.push({
        id: "specialization-top",
        title: "Most specialised (expert, token) pairs in the last MoE layer",
        caption: (data.tokens === undefined
          ? "Token ids of the model's vocabulary (no tokenizer was given to the report)"
          : "Tokens as their text, quoted and escaped, then their id in the model's vocabulary") +
          `; score = occurrences routed to the expert / occurrences; ${NUMBERING}.`,
        columns: ["scale", "layer", "expert", "token", "routed", "occurrences", "score"],
        rows: specialization.flatMap(({ doc }) => {
          const last = doc.perLayer[doc.perLayer.length - 1]
          if (last === undefined) return []
          return last.experts
            .flatMap((e) => e.top.slice(0, 1).map((t) => ({ expert: e.expert, ...t })))
            .sort((a, b) => b.score - a.score || b.occurrences - a.occurrences)
            .slice(0, 8)
            .map((t) => [
              doc.scale,
              last.layer,
              t.expert,
              tokenLabel(data.tokens, t.token),
              t.routed,
              t.occurrences,
              fmt(t.score, 3)
            ])
        }),
        sources: [
          ...specialization.map((s) => s.record.stageId),
          ...(data.tokens === undefined ? [] : [data.tokens.source])
        ]
      })
    }

    const overTraining = routingOverTraining({
      coactivation: coactivationAll,
      specialization: specializationAll,
      tracking,
      tokens: data.tokens,
      numbering: NUMBERING
    })
    figures.push(...overTraining.figures)
    tables.push(...overTraining.tables)

    return {
      id: "routing",
      title: "Routing",
      intro: "Router traces of fixed held-out test-split samples at every checkpoint (the same tokens each time), " +
        "analysed per MoE layer; co-activation and specialization at the final checkpoint, then, where every " +
        "checkpoint was analysed, how they change over training. Layers carry Megatron's 1-based layer " +
        "numbers, as FLAME-MoE and its paper name them: layer 1 is FLAME-MoE's dense first layer, so its first " +
        "MoE layer is layer 2.",
      figures,
      tables
    }
  }
}
