import { Data } from "effect"

/** The tokenizer file cannot be used: unreadable, not JSON, or a component we do not implement. */
export class TokenizerLoadError extends Data.TaggedError("TokenizerLoadError")<{
  readonly path: string
  readonly reason: string
}> {
  override get message(): string {
    return `${this.path}: ${this.reason}`
  }
}

export type BadInputReason =
  | "malformed JSON"
  | "not a JSON object"
  | "missing or non-string text"
  | "invalid UTF-8"
  | "lone surrogate in text"
  | "truncated zstd stream"
  | "corrupt zstd stream"

/** A line of an input shard that cannot be tokenized; `line` is 1-based. */
export class BadInputError extends Data.TaggedError("BadInputError")<{
  readonly file: string
  readonly line: number
  readonly reason: BadInputReason
  readonly detail?: string
}> {
  override get message(): string {
    return `${this.file}:${this.line}: ${this.reason}${this.detail === undefined ? "" : ` (${this.detail})`}`
  }
}

/** Reading the input or writing the outputs failed at the operating-system level. */
export class ShardIoError extends Data.TaggedError("ShardIoError")<{
  readonly path: string
  readonly reason: string
}> {
  override get message(): string {
    return `${this.path}: ${this.reason}`
  }
}
