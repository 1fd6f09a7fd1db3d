/**
 * Few-shot prompts, as lm-evaluation-harness's default ContextSampler builds them.
 *
 * One `random.Random(seed)` per task, shared by all of the task's documents in evaluation order: the harness
 * creates the sampler's generator once (Task.set_fewshot_seed) and never re-seeds it per document, so the
 * examples of document i depend on how many draws documents 0..i-1 made. Per document it draws
 * `rnd.sample(fewshot_docs, n)` (n + 1 when the config's fewshot split equals its test split, see
 * `TaskSpec.harnessTestSplit`), drops the evaluated document if drawn, keeps the first n, and renders each
 * as doc_to_text + target_delimiter " " + target, joined and terminated by "\n\n".
 */
import { EvalSetupError } from "./errors.ts"
import { PythonRandom } from "./pythonRandom.ts"
import type { TaskDoc } from "./taskDocs.ts"
import type { McDoc, Task } from "./tasks.ts"

export const targetDelimiter = " "
export const fewshotDelimiter = "\n\n"

/** One solved example: the prompt followed by the gold answer. */
export const solvedExample = (doc: McDoc): string =>
  doc._tag === "Choices"
    ? doc.query + targetDelimiter + doc.choices[doc.gold]!
    // Multiple-input tasks render the gold context then the shared target.
    : doc.contexts[doc.gold]! + targetDelimiter + doc.target

/** Python's == on JSON values: dicts compare by keys and values, whatever their order. */
const sameRow = (a: unknown, b: unknown): boolean => {
  if (a === b) return true
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  if (ka.length !== kb.length) return false
  return ka.every((k) =>
    Object.hasOwn(b, k) && sameRow((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])
  )
}

export class FewshotSampler {
  private readonly rnd: PythonRandom

  constructor(
    private readonly task: Pick<Task, "name" | "harnessTestSplit">,
    private readonly pool: ReadonlyArray<TaskDoc>,
    seed: number
  ) {
    this.rnd = new PythonRandom(seed)
  }

  /** The harness compares config.fewshot_split (unset, None) with config.test_split. */
  private get drawsExtra(): boolean {
    return this.task.harnessTestSplit === null
  }

  /** The documents shown before `evaluated`; advances the shared generator. */
  examplesFor(evaluated: TaskDoc, n: number): ReadonlyArray<TaskDoc> {
    if (n === 0) return []
    const draw = this.drawsExtra ? n + 1 : n
    if (draw > this.pool.length) {
      throw new EvalSetupError({
        task: this.task.name,
        reason: `${n}-shot needs ${draw} few-shot documents, the few-shot split has ${this.pool.length}`
      })
    }
    return this.rnd.sample(this.pool, draw).filter((d) => !sameRow(d.row, evaluated.row)).slice(0, n)
  }

  /** The labeled-examples prefix for `evaluated` ("" for 0-shot). */
  prefixFor(evaluated: TaskDoc, n: number): string {
    return this.examplesFor(evaluated, n).map((d) => solvedExample(d.doc) + fewshotDelimiter).join("")
  }
}

/** The context string(s) of a document: one for Choices docs, one per option for MultipleInput docs. */
export const contextsOf = (doc: McDoc, prefix: string): ReadonlyArray<string> =>
  doc._tag === "Choices" ? [prefix + doc.query] : doc.contexts.map((c) => prefix + c)
