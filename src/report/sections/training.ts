/**
 * Training: loss curves and the learning-rate schedule of every train stage, from the metrics the
 * worker streamed into lineage.
 */
import type { Figure, SectionBuilder } from "../model.ts"
import { recordsOfKind } from "../model.ts"
import { baseOption, downsample, labelOf, line, valueAxis, yLogAxis, yValueAxis } from "./chart.ts"

export const trainingSection: SectionBuilder = {
  id: "training",
  build: (data) => {
    const trains = recordsOfKind(data, "train").filter((r) => (r.metrics.loss?.length ?? 0) > 0)
    if (trains.length === 0) return undefined
    const curve = (metric: string, title: string, axis: string, caption: string, log = false): Figure => ({
      id: `train-${metric}`,
      title,
      caption,
      sources: trains.map((r) => r.stageId),
      option: {
        ...baseOption(true),
        tooltip: { trigger: "axis", confine: true },
        xAxis: valueAxis("iteration"),
        yAxis: log ? yLogAxis(axis) : yValueAxis(axis),
        series: trains.map((r) => line(labelOf(r.params, r.stageId), downsample(r.metrics[metric] ?? [])))
      }
    })
    return {
      id: "training",
      title: "Training",
      intro: `${trains.length} training run(s). Curves are per iteration as the worker logged them ` +
        "(long runs are thinned to 1500 points per curve).",
      figures: [
        curve("loss", "Training loss", "LM loss (nats/token)", "Language-model loss per iteration, one curve per run."),
        curve(
          "lr",
          "Learning-rate schedule",
          "learning rate",
          "WSD schedule as applied: warm-up, constant, exponential anneal over the last 10% of iterations."
        )
      ],
      tables: []
    }
  }
}
