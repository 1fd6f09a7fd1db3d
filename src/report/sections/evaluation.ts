/**
 * Evaluation: validation loss and the harness tasks' accuracies at every evaluated checkpoint.
 */
import type { SectionBuilder } from "../model.ts"
import { recordsOfKind } from "../model.ts"
import { fmt } from "./chart.ts"

interface EvalResultLike {
  readonly scale: string
  readonly step: number
  readonly validationLoss: number
  readonly validationPerplexity: number
  readonly tasks: Readonly<
    Record<string, { readonly acc: { readonly value: number }; readonly accNorm?: { readonly value: number } }>
  >
}

export const evaluationSection: SectionBuilder = {
  id: "evaluation",
  build: (data) => {
    const evals = recordsOfKind(data, "eval").filter((r) => r.result !== null)
    if (evals.length === 0) return undefined
    const results = evals.map((r) => ({ record: r, result: r.result as EvalResultLike }))
    const tasks = [...new Set(results.flatMap((e) => Object.keys(e.result.tasks ?? {})))]
    const scales = [...new Set(results.map((e) => e.result.scale))]
    results.sort((a, b) =>
      scales.indexOf(a.result.scale) - scales.indexOf(b.result.scale) || a.result.step - b.result.step
    )
    return {
      id: "evaluation",
      title: "Evaluation",
      intro: "Validation loss on the held-out split and zero/few-shot accuracies (acc / acc_norm) at each checkpoint.",
      figures: [],
      tables: [{
        id: "eval-table",
        title: "Evaluation per checkpoint",
        columns: ["scale", "step", "val loss", "val ppl", ...tasks.flatMap((t) => [`${t} acc`, `${t} acc_norm`])],
        rows: results.map(({ result }) => [
          result.scale,
          result.step,
          fmt(result.validationLoss),
          fmt(result.validationPerplexity),
          ...tasks.flatMap((t) => [fmt(result.tasks[t]?.acc.value, 3), fmt(result.tasks[t]?.accNorm?.value, 3)])
        ]),
        sources: results.map((e) => e.record.stageId)
      }]
    }
  }
}
