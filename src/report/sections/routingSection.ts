/**
 * Routing: router saturation along training, load balance over training, expert co-activation and
 * specialization at the final checkpoint, from the analysis stages' outputs. Layers are named by the
 * numbers the analyses write: Megatron's 1-based layer_number (src/analysis/layerNumber.ts), so
 * FLAME-MoE's first MoE layer is "layer 2".
 */
import { Either, Schema } from "effect"
import {
  CoactivationResult,
  LoadBalanceResult,
  SaturationResult,
  SpecializationSummary
} from "../../analysis/schema.ts"
import { ReportError } from "../errors.ts"
import type { Figure, ReportData, SectionBuilder, StageRecord, Table } from "../model.ts"
import { recordsOfKind } from "../model.ts"
import type { Point } from "./chart.ts"
import { baseOption, fmt, line, mean, valueAxis } from "./chart.ts"

const documentOf = <A, I>(record: StageRecord, output: string, schema: Schema.Schema<A, I>): A => {
  const decoded = Schema.decodeUnknownEither(schema)(record.documents[output])
  if (Either.isLeft(decoded)) {
    throw new ReportError({ where: `${record.stageId} output ${output}`, reason: decoded.left.message })
  }
  return decoded.right
}

const analyses = <A, I>(data: ReportData, kind: string, output: string, schema: Schema.Schema<A, I>) =>
  recordsOfKind(data, kind).map((record) => ({ record, doc: documentOf(record, output, schema) }))

const finalPerScale = <D extends { readonly scale: string; readonly step: number }, R>(
  docs: ReadonlyArray<{ readonly record: R; readonly doc: D }>
) => {
  const last = new Map<string, number>()
  for (const { doc } of docs) last.set(doc.scale, Math.max(last.get(doc.scale) ?? -Infinity, doc.step))
  return docs.filter(({ doc }) => doc.step === last.get(doc.scale))
}

/** Said wherever the section names a layer. */
const NUMBERING = "layers numbered from 1 as in Megatron"

export const routingSection: SectionBuilder = {
  id: "routing",
  build: (data) => {
    const saturation = analyses(data, "analysis/router-saturation", "saturation.json", SaturationResult)
    const load = analyses(data, "analysis/load-balance", "load-balance.json", LoadBalanceResult)
    // Pipelines may compute these at every checkpoint; the report shows each scale's final one.
    const coactivation = finalPerScale(
      analyses(data, "analysis/expert-coactivation", "coactivation.json", CoactivationResult)
    )
    const specialization = finalPerScale(
      analyses(data, "analysis/expert-specialization", "specialization.json", SpecializationSummary)
    )
    if (saturation.length + load.length + coactivation.length + specialization.length === 0) return undefined
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
          yAxis: valueAxis("saturation", { min: 0, max: 1, scale: false }),
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
          yAxis: valueAxis(axis),
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

    for (const { doc, record } of coactivation) {
      const E = doc.numExperts
      const max = Math.max(1e-9, ...doc.matrix.flatMap((m) => m.flat()))
      const experts = Array.from({ length: E }, (_, i) => String(i))
      const cells = (m: ReadonlyArray<ReadonlyArray<number>>) => {
        const out: Array<[number, number, number]> = []
        m.forEach((row, i) => row.forEach((v, j) => v > 0 && out.push([j, i, Number(v.toPrecision(4))])))
        return out
      }
      figures.push({
        id: `coactivation-${doc.scale}`,
        title: `Expert co-activation: ${doc.scale}, step ${doc.step}`,
        caption: `Row i, column j: tokens routed to both experts / tokens routed to expert i (diagonal zero), over ` +
          `${doc.tokens} held-out tokens; the slider below picks the MoE layer (${NUMBERING}).`,
        sources: [record.stageId],
        height: 560,
        option: {
          baseOption: {
            animation: false,
            timeline: {
              axisType: "category",
              data: doc.layers.map((l) => `layer ${l}`),
              autoPlay: false,
              bottom: 0,
              left: 40,
              right: 40
            },
            tooltip: { position: "top", confine: true },
            grid: { left: 60, right: 90, top: 40, bottom: 110 },
            xAxis: { type: "category", data: experts, name: "expert j", nameLocation: "middle", nameGap: 28 },
            yAxis: { type: "category", data: experts, name: "expert i", nameLocation: "middle", nameGap: 35 },
            visualMap: {
              min: 0,
              max: Number(max.toPrecision(3)),
              calculable: true,
              orient: "vertical",
              right: 10,
              top: 40,
              inRange: { color: ["#f7fbff", "#6baed6", "#08306b"] }
            },
            series: [{ type: "heatmap", name: "co-activation", data: cells(doc.matrix[0] ?? []) }]
          },
          options: doc.matrix.map((m, l) => ({
            title: { text: `layer ${doc.layers[l]}`, left: "center", textStyle: { fontSize: 13 } },
            series: [{ data: cells(m) }]
          }))
        }
      })
    }

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
          yAxis: valueAxis("mean max specialization", { min: 0, max: 1, scale: false }),
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
        caption: "Token ids of the model's vocabulary; score = occurrences routed to the expert / occurrences; " +
          `${NUMBERING}.`,
        columns: ["scale", "layer", "expert", "token id", "routed", "occurrences", "score"],
        rows: specialization.flatMap(({ doc }) => {
          const last = doc.perLayer[doc.perLayer.length - 1]
          if (last === undefined) return []
          return last.experts
            .flatMap((e) => e.top.slice(0, 1).map((t) => ({ expert: e.expert, ...t })))
            .sort((a, b) => b.score - a.score || b.occurrences - a.occurrences)
            .slice(0, 8)
            .map((t) => [doc.scale, last.layer, t.expert, t.token, t.routed, t.occurrences, fmt(t.score, 3)])
        }),
        sources: specialization.map((s) => s.record.stageId)
      })
    }

    return {
      id: "routing",
      title: "Routing",
      intro: "Router traces of fixed held-out test-split samples at every checkpoint (the same tokens each time), " +
        "analysed per MoE layer. Layers carry Megatron's 1-based layer numbers, as FLAME-MoE and its paper " +
        "name them: layer 1 is FLAME-MoE's dense first layer, so its first MoE layer is layer 2.",
      figures,
      tables
    }
  }
}
