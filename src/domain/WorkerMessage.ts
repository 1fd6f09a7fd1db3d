/**
 * The JSON-lines protocol a child worker speaks on its dedicated channel (docs/worker-protocol.md).
 */
import { Schema } from "effect"

export const Progress = Schema.Struct({
  type: Schema.Literal("progress"),
  step: Schema.Number,
  total: Schema.Number
})

export const Metric = Schema.Struct({
  type: Schema.Literal("metric"),
  name: Schema.String,
  step: Schema.Number,
  // JSON has no NaN: workers write null for non-finite values.
  value: Schema.NullOr(Schema.Number)
})

export const Log = Schema.Struct({
  type: Schema.Literal("log"),
  level: Schema.Literal("debug", "info", "warn", "error"),
  message: Schema.String
})

export const ArtifactReady = Schema.Struct({
  type: Schema.Literal("artifact"),
  name: Schema.String,
  path: Schema.String
})

export const Result = Schema.Struct({
  type: Schema.Literal("result"),
  value: Schema.Unknown
})

export const WorkerMessage = Schema.Union(Progress, Metric, Log, ArtifactReady, Result)
export type WorkerMessage = typeof WorkerMessage.Type

export const decodeWorkerLine = Schema.decodeUnknownEither(Schema.parseJson(WorkerMessage))
