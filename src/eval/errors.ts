import { Data } from "effect"

/** A row of a task file that does not have the dataset's layout; `line` is 1-based, `key` a dotted path. */
export class BadRowError extends Data.TaggedError("BadRowError")<{
  readonly file: string
  readonly line: number
  /** The offending field ("choices.label", "answerKey"), absent when the line is not a JSON object at all. */
  readonly key?: string
  readonly reason: string
}> {
  override get message(): string {
    return `${this.file}:${this.line}${this.key === undefined ? "" : `: ${this.key}`}: ${this.reason}`
  }
}

/** A task file that cannot be read at all. */
export class TaskFileError extends Data.TaggedError("TaskFileError")<{
  readonly file: string
  readonly reason: string
}> {
  override get message(): string {
    return `${this.file}: ${this.reason}`
  }
}

/** The evaluation cannot be set up: e.g. fewer few-shot documents than shots, or a result of the wrong arity. */
export class EvalSetupError extends Data.TaggedError("EvalSetupError")<{
  readonly task: string
  readonly reason: string
}> {
  override get message(): string {
    return `${this.task}: ${this.reason}`
  }
}
