/**
 * All log-likelihood requests of one task: for every evaluated document, in order, its few-shot prefix
 * (one shared generator, see fewshot.ts), its context(s) and continuation(s), and their tokens. The worker
 * answers each request with the summed log-probability of its continuation tokens.
 */
import { encodePair, type Encoder } from "./encoding.ts"
import { contextsOf, FewshotSampler, targetDelimiter } from "./fewshot.ts"
import type { TaskDoc } from "./taskDocs.ts"
import type { McDoc, Task } from "./tasks.ts"

export interface LoglikelihoodRequest {
  readonly docIndex: number
  readonly choiceIndex: number
  readonly context: string
  readonly continuation: string
  readonly contextTokens: ReadonlyArray<number>
  readonly continuationTokens: ReadonlyArray<number>
}

export interface DocPrompt {
  readonly docIndex: number
  readonly doc: McDoc
  /** The labeled examples before the document ("" for 0-shot). */
  readonly fewshotPrefix: string
}

export interface TaskRequests {
  readonly task: Task["name"]
  readonly numFewshot: number
  readonly prompts: ReadonlyArray<DocPrompt>
  readonly requests: ReadonlyArray<LoglikelihoodRequest>
}

/** The (context, continuation) strings of a document, one pair per choice, like construct_requests. */
export const stringPairs = (doc: McDoc, prefix: string): ReadonlyArray<readonly [string, string]> => {
  const contexts = contextsOf(doc, prefix)
  return doc._tag === "Choices"
    ? doc.choices.map((choice) => [contexts[0]!, targetDelimiter + choice] as const)
    : contexts.map((context) => [context, targetDelimiter + doc.target] as const)
}

export interface BuildOptions {
  readonly seed: number
  /** Defaults to the task's own (FLAME-MoE's) shot count. */
  readonly numFewshot?: number
}

export const buildTaskRequests = (
  task: Task,
  evalDocs: ReadonlyArray<TaskDoc>,
  fewshotDocs: ReadonlyArray<TaskDoc>,
  encoder: Encoder,
  options: BuildOptions
): TaskRequests => {
  const numFewshot = options.numFewshot ?? task.numFewshot
  const sampler = new FewshotSampler(task, fewshotDocs, options.seed)
  const prompts: Array<DocPrompt> = []
  const requests: Array<LoglikelihoodRequest> = []
  evalDocs.forEach((evaluated, docIndex) => {
    const fewshotPrefix = sampler.prefixFor(evaluated, numFewshot)
    prompts.push({ docIndex, doc: evaluated.doc, fewshotPrefix })
    stringPairs(evaluated.doc, fewshotPrefix).forEach(([context, continuation], choiceIndex) => {
      const tokens = encodePair(encoder, context, continuation)
      requests.push({
        docIndex,
        choiceIndex,
        context,
        continuation,
        contextTokens: tokens.context,
        continuationTokens: tokens.continuation
      })
    })
  })
  return { task: task.name, numFewshot, prompts, requests }
}
