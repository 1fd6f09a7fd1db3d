/**
 * Scores from the worker's log-likelihood sums, by the harness's multiple-choice rules:
 * - acc: argmax of the sums (numpy's argmax: the first maximum wins ties);
 * - acc_norm: argmax of sum / len(choice), where len counts the characters (code points) of doc_to_choice,
 *   i.e. the choice text without the " " target delimiter that the continuation carried;
 * - per task: the mean, and the standard error of the mean = sample standard deviation / sqrt(n).
 * WinoGrande (multiple-input) reports acc only.
 */
import { Either } from "effect"
import { EvalSetupError } from "./errors.ts"
import { pyLen } from "./pythonString.ts"
import type { LoglikelihoodRequest, TaskRequests } from "./requests.ts"
import { type DocScore, type MetricValue, TaskResult } from "./schema.ts"
import type { McDoc, Task } from "./tasks.ts"

export const argmax = (xs: ReadonlyArray<number>): number => {
  let best = 0
  for (let i = 1; i < xs.length; i++) if (xs[i]! > xs[best]!) best = i
  return best
}

/** doc_to_choice of a document: the choices, or the per-option contexts of a multiple-input document. */
export const choiceTexts = (doc: McDoc): ReadonlyArray<string> => doc._tag === "Choices" ? doc.choices : doc.contexts

export const scoreDoc = (
  doc: McDoc,
  loglikelihoods: ReadonlyArray<number>
): { readonly acc: 0 | 1; readonly accNorm: 0 | 1 } => {
  const lengths = choiceTexts(doc).map(pyLen)
  const acc = argmax(loglikelihoods) === doc.gold ? 1 : 0
  const accNorm = argmax(loglikelihoods.map((ll, i) => ll / lengths[i]!)) === doc.gold ? 1 : 0
  return { acc, accNorm }
}

/** Mean and standard error of the mean (the harness's mean_stderr: sample stddev, n - 1, over sqrt(n)). */
export const meanWithStderr = (values: ReadonlyArray<number>): MetricValue => {
  const n = values.length
  const mean = values.reduce((a, b) => a + b, 0) / n
  if (n < 2) return { value: mean, stderr: null }
  const variance = values.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1)
  return { value: mean, stderr: Math.sqrt(variance) / Math.sqrt(n) }
}

/**
 * Aggregates a task. `loglikelihoods[r]` answers `built.requests[r]`; they are regrouped per document
 * by the requests' docIndex and choiceIndex, so their order is free.
 */
export const scoreTask = (
  task: Pick<Task, "name" | "metrics">,
  built: TaskRequests,
  loglikelihoods: ReadonlyArray<number>
): Either.Either<TaskResult, EvalSetupError> => {
  if (loglikelihoods.length !== built.requests.length) {
    return Either.left(
      new EvalSetupError({
        task: task.name,
        reason: `${loglikelihoods.length} log-likelihoods for ${built.requests.length} requests`
      })
    )
  }
  const perDoc: Array<Array<number>> = built.prompts.map((p) => new Array<number>(choiceTexts(p.doc).length))
  built.requests.forEach((r: LoglikelihoodRequest, i) => {
    perDoc[r.docIndex]![r.choiceIndex] = loglikelihoods[i]!
  })
  const docs: Array<DocScore> = built.prompts.map((p, i) => {
    const lls = perDoc[i]!
    return { docIndex: p.docIndex, gold: p.doc.gold, loglikelihoods: lls, ...scoreDoc(p.doc, lls) }
  })
  const withNorm = task.metrics.includes("acc_norm")
  return Either.right(
    new TaskResult({
      task: task.name,
      numFewshot: built.numFewshot,
      numDocs: docs.length,
      acc: meanWithStderr(docs.map((d) => d.acc)),
      ...(withNorm ? { accNorm: meanWithStderr(docs.map((d) => d.accNorm)) } : {}),
      docs
    })
  )
}
