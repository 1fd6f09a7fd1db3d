/**
 * One task end to end, with the model abstracted as a function from requests to log-likelihood sums
 * (the C++ worker in the pipeline, a stub in tests): read the splits, build the prompts and requests,
 * ask for the log-likelihoods, score.
 */
import { Effect } from "effect"
import type { Encoder } from "./encoding.ts"
import { type BadRowError, EvalSetupError, type TaskFileError } from "./errors.ts"
import { buildTaskRequests, type LoglikelihoodRequest } from "./requests.ts"
import type { TaskResult } from "./schema.ts"
import { scoreTask } from "./scoring.ts"
import { readTaskSplits } from "./taskDocs.ts"
import { flameFewshotSeed, type Task } from "./tasks.ts"

export interface EvaluateOptions {
  /** Folder holding `{task}/{split}.jsonl`. */
  readonly dataRoot: string
  readonly encoder: Encoder
  readonly seed?: number
  readonly numFewshot?: number
}

export const evaluateTask = <E, R>(
  task: Task,
  options: EvaluateOptions,
  loglikelihoods: (requests: ReadonlyArray<LoglikelihoodRequest>) => Effect.Effect<ReadonlyArray<number>, E, R>
): Effect.Effect<TaskResult, E | BadRowError | TaskFileError | EvalSetupError, R> =>
  Effect.gen(function*() {
    const numFewshot = options.numFewshot ?? task.numFewshot
    const splits = yield* readTaskSplits(task, options.dataRoot, numFewshot)
    const built = yield* Effect.try({
      try: () =>
        buildTaskRequests(task, splits.evalDocs, splits.fewshotDocs, options.encoder, {
          seed: options.seed ?? flameFewshotSeed,
          numFewshot
        }),
      catch: (e) => e instanceof EvalSetupError ? e : new EvalSetupError({ task: task.name, reason: String(e) })
    })
    const lls = yield* loglikelihoods(built.requests)
    return yield* scoreTask(task, built, lls)
  })
