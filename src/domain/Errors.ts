/**
 * Errors. Those persisted in lineage (an execution's `error` column) are Schema.TaggedError so they
 * round-trip through JSON; those that only travel inside the engine are Data.TaggedError.
 */
import { Data, Schema } from "effect"

/** A child worker exited non-zero, died by a signal, or broke the protocol. */
export class WorkerFailed extends Schema.TaggedError<WorkerFailed>()("WorkerFailed", {
  stage: Schema.String,
  reason: Schema.String,
  exitCode: Schema.NullOr(Schema.Number),
  signal: Schema.NullOr(Schema.String),
  logPath: Schema.String,
  logTail: Schema.Array(Schema.String)
}) {
  override get message() {
    const how = this.signal !== null ? `killed by ${this.signal}` : `exit code ${this.exitCode}`
    return `stage ${this.stage}: ${this.reason} (${how})`
  }
}

/** A stage body written in TypeScript failed. */
export class StageFailed extends Schema.TaggedError<StageFailed>()("StageFailed", {
  stage: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `stage ${this.stage}: ${this.reason}`
  }
}

/** A stage did not produce an output it declared. */
export class MissingOutput extends Schema.TaggedError<MissingOutput>()("MissingOutput", {
  stage: Schema.String,
  output: Schema.String,
  path: Schema.String
}) {
  override get message() {
    return `stage ${this.stage} did not produce its declared output '${this.output}' (${this.path})`
  }
}

export const PersistedError = Schema.Union(WorkerFailed, StageFailed, MissingOutput)
export type PersistedError = typeof PersistedError.Type

/** The pipeline is not a valid DAG, or names something that does not exist. */
export class PipelineError extends Data.TaggedError("PipelineError")<{
  readonly pipeline: string
  readonly reason: string
}> {
  override get message() {
    return `pipeline ${this.pipeline}: ${this.reason}`
  }
}

/** A parameter value (from a preset, --set, or defaults) does not decode. */
export class ParamError extends Data.TaggedError("ParamError")<{
  readonly stage: string
  readonly key: string
  readonly reason: string
}> {
  override get message() {
    return `stage ${this.stage}, param '${this.key}': ${this.reason}`
  }
}

/** The workspace is locked by another live run. */
export class WorkspaceBusy extends Data.TaggedError("WorkspaceBusy")<{
  readonly workspace: string
  readonly holder: string
}> {
  override get message() {
    return `workspace ${this.workspace} is in use by ${this.holder}; wait for it to finish or pass --wait`
  }
}

/** The lineage database could not be opened, migrated or written. */
export class LineageError extends Data.TaggedError("LineageError")<{
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message() {
    return `lineage database: ${this.reason}`
  }
}

/** File-system trouble in the artifact store. */
export class StoreError extends Data.TaggedError("StoreError")<{
  readonly path: string
  readonly reason: string
}> {
  override get message() {
    return `${this.path}: ${this.reason}`
  }
}

/** A command-line argument names something that does not exist. */
export class NotFound extends Data.TaggedError("NotFound")<{
  readonly what: string
  readonly name: string
  readonly hint?: string | undefined
}> {
  override get message() {
    return `unknown ${this.what} '${this.name}'${this.hint ? `; ${this.hint}` : ""}`
  }
}
