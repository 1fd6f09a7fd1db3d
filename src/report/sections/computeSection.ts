/**
 * Validation loss against training compute C = 6 N D: along training for the suite (every evaluated
 * checkpoint of a scale, N = its active parameters, D = tokens seen by that step) and for the ablation
 * (each run's final checkpoint, grouped by shape).
 */
import { isCooldownStage } from "../../scaling/cooldownRuns.ts"
import type { Figure, SectionBuilder, StageRecord } from "../model.ts"
import { recordsOfKind } from "../model.ts"
import type { Point } from "./chart.ts"
import { baseOption, line, logAxis, yValueAxis } from "./chart.ts"

interface TrainParamsLike {
  readonly scale: string
  readonly globalBatchSize: number
  readonly model: { readonly seqLength: number }
}

const suiteSeries = (data: Parameters<SectionBuilder["build"]>[0]) => {
  const trains = new Map<string, StageRecord>()
  for (const t of recordsOfKind(data, "train")) trains.set((t.params as TrainParamsLike).scale, t)
  const byScale = new Map<string, Array<{ flops: number; loss: number; stage: string; train: string }>>()
  for (const e of recordsOfKind(data, "eval")) {
    const result = e.result as { scale: string; step: number; validationLoss: number } | null
    const train = result ? trains.get(result.scale) : undefined
    const active = (train?.result as { activeParams?: number } | null)?.activeParams
    if (!result || !train || active === undefined || !Number.isFinite(result.validationLoss) || result.step === 0) {
      continue
    }
    const p = train.params as TrainParamsLike
    const flops = 6 * active * result.step * p.globalBatchSize * p.model.seqLength
    const list = byScale.get(result.scale) ?? []
    list.push({ flops, loss: result.validationLoss, stage: e.stageId, train: train.stageId })
    byScale.set(result.scale, list)
  }
  return byScale
}

const ablationSeries = (data: Parameters<SectionBuilder["build"]>[0]) => {
  const byShape = new Map<string, Array<{ flops: number; loss: number; stage: string }>>()
  for (const v of recordsOfKind(data, "ablation/validation-loss")) {
    const r = v.result as { shape: string; flops: number; loss: number } | null
    if (!r || !Number.isFinite(r.loss)) continue
    // The cool-down grid measures the grid's points again: its own line per shape, not interleaved.
    const series = isCooldownStage(v.stageId) ? `${r.shape} (cool-down)` : r.shape
    const list = byShape.get(series) ?? []
    list.push({ flops: r.flops, loss: r.loss, stage: v.stageId })
    byShape.set(series, list)
  }
  return byShape
}

export const computeSection: SectionBuilder = {
  id: "compute",
  build: (data) => {
    const figures: Array<Figure> = []
    const suite = suiteSeries(data)
    if (suite.size > 0) {
      figures.push({
        id: "val-loss-flops",
        title: "Validation loss vs training FLOPs",
        caption: "Each checkpoint's validation loss against 6 N D (N active parameters, D tokens trained so far).",
        sources: [...suite.values()].flatMap((l) => l.flatMap((p) => [p.stage, p.train])),
        option: {
          ...baseOption(true),
          xAxis: logAxis("training FLOPs (6 N D)"),
          yAxis: yValueAxis("validation loss"),
          series: [...suite].map(([scale, points]) =>
            line(scale, points.sort((a, b) => a.flops - b.flops).map((p): Point => [p.flops, p.loss]), {
              showSymbol: true
            })
          )
        }
      })
    }
    const ablation = ablationSeries(data)
    if (ablation.size > 0) {
      figures.push({
        id: "ablation-loss-flops",
        title: "Ablation: validation loss vs FLOPs",
        caption: "Final validation loss of each ablation run against its 6 N D, one line per model shape.",
        sources: [...ablation.values()].flatMap((l) => l.map((p) => p.stage)),
        option: {
          ...baseOption(true),
          xAxis: logAxis("training FLOPs (6 N D)"),
          yAxis: yValueAxis("validation loss"),
          series: [...ablation].map(([shape, points]) =>
            line(shape, points.sort((a, b) => a.flops - b.flops).map((p): Point => [p.flops, p.loss]), {
              showSymbol: true
            })
          )
        }
      })
    }
    if (figures.length === 0) return undefined
    return {
      id: "compute",
      title: "Validation loss vs compute",
      intro: "Training compute is counted as 6 N D, N = active parameters (embeddings included), D = tokens.",
      figures,
      tables: []
    }
  }
}
