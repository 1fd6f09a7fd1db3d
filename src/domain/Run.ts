/**
 * What a run reports: per stage, what happened; overall, the counts `--json` gives scripts.
 */
import { Schema } from "effect"

export const StageStatus = Schema.Literal("executed", "cached", "failed", "interrupted", "skipped")
export type StageStatus = typeof StageStatus.Type

export const StageOutcome = Schema.Struct({
  stage: Schema.String,
  kind: Schema.String,
  status: StageStatus,
  execution: Schema.NullOr(Schema.String),
  fingerprint: Schema.NullOr(Schema.String),
  durationMs: Schema.NullOr(Schema.Number),
  error: Schema.NullOr(Schema.String),
  resumedFrom: Schema.NullOr(Schema.String)
})
export type StageOutcome = typeof StageOutcome.Type

export const RunSummary = Schema.Struct({
  runId: Schema.String,
  pipeline: Schema.String,
  preset: Schema.String,
  status: Schema.Literal("succeeded", "failed", "interrupted"),
  executed: Schema.Number,
  cached: Schema.Number,
  failed: Schema.Number,
  skipped: Schema.Number,
  interrupted: Schema.Number,
  wallMs: Schema.Number,
  /** Time spent inside stage bodies; wallMs minus this (over parallelism) is the engine's overhead. */
  stageMs: Schema.Number,
  stages: Schema.Array(StageOutcome)
})
export type RunSummary = typeof RunSummary.Type
