import { Data } from "effect"

/** A router trace that is not in the worker's format, or does not fit the analysis (wrong vocabulary...). */
export class TraceError extends Data.TaggedError("TraceError")<{
  readonly file: string
  readonly reason: string
}> {
  override get message(): string {
    return `${this.file}: ${this.reason}`
  }
}

/** Two traces that an analysis compares but that were not taken on the same tokens with the same router shape. */
export class TraceMismatch extends Data.TaggedError("TraceMismatch")<{
  readonly file: string
  readonly reference: string
  readonly field: string
  readonly reason: string
}> {
  override get message(): string {
    return `${this.file}: ${this.field} differs from ${this.reference}: ${this.reason}`
  }
}

/** Analysis results that cannot be combined (different scales, layers or experts), named by what they are. */
export class AnalysisInputError extends Data.TaggedError("AnalysisInputError")<{
  readonly what: string
  readonly reason: string
}> {
  override get message(): string {
    return `${this.what}: ${this.reason}`
  }
}
