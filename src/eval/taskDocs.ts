/**
 * The documents of one split of a task, read from a local JSON-lines file in the Hub dataset's layout.
 * Each keeps its raw row: the harness tells the evaluated document apart from few-shot candidates by
 * comparing whole rows (dict equality), so we do too.
 */
import { Effect, Either } from "effect"
import { join } from "node:path"
import type { BadRowError, TaskFileError } from "./errors.ts"
import { parseJsonLines, readTextFile } from "./loadRows.ts"
import type { McDoc, Task } from "./tasks.ts"

export interface TaskDoc {
  /** 1-based line of the row in its file. */
  readonly line: number
  readonly row: object
  readonly doc: McDoc
}

export const parseTaskDocs = (
  task: Task,
  text: string,
  file: string
): Either.Either<ReadonlyArray<TaskDoc>, BadRowError> =>
  Either.flatMap(
    parseJsonLines(text, file),
    (values) =>
      Either.all(values.map(({ line, value }) =>
        Either.map(task.decodeDoc(value, file, line), (doc): TaskDoc => ({ line, row: value, doc }))
      ))
  )

export const readTaskDocs = (
  task: Task,
  file: string
): Effect.Effect<ReadonlyArray<TaskDoc>, BadRowError | TaskFileError> =>
  readTextFile(file).pipe(Effect.flatMap((text) => parseTaskDocs(task, text, file)))

/** Where a split lives under a data root: `{root}/{task}/{split}.jsonl` (the fixtures' layout). */
export const splitPath = (root: string, task: Task, split: Task["evalSplit"]): string =>
  join(root, task.name, `${split}.jsonl`)

export interface TaskSplits {
  readonly evalDocs: ReadonlyArray<TaskDoc>
  /** Empty for 0-shot tasks: their train split is not needed (nor read). */
  readonly fewshotDocs: ReadonlyArray<TaskDoc>
}

export const readTaskSplits = (
  task: Task,
  root: string,
  numFewshot: number = task.numFewshot
): Effect.Effect<TaskSplits, BadRowError | TaskFileError> =>
  Effect.all({
    evalDocs: readTaskDocs(task, splitPath(root, task, task.evalSplit)),
    fewshotDocs: numFewshot > 0 ? readTaskDocs(task, splitPath(root, task, task.fewshotSplit)) : Effect.succeed([])
  })
