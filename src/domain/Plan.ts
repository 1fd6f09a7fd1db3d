/**
 * Why a stage would run: the reasons `plan` prints and `--json` emits.
 */
import { Schema } from "effect"
import { formatMs } from "../format.ts"

export const StaleReason = Schema.Union(
  Schema.TaggedStruct("NeverRun", {}),
  Schema.TaggedStruct("ParamChanged", {
    key: Schema.String,
    from: Schema.optional(Schema.String),
    to: Schema.optional(Schema.String)
  }),
  Schema.TaggedStruct("VersionChanged", { from: Schema.String, to: Schema.String }),
  Schema.TaggedStruct("WorkerChanged", { from: Schema.NullOr(Schema.String), to: Schema.NullOr(Schema.String) }),
  Schema.TaggedStruct("UpstreamChanged", { input: Schema.String, stage: Schema.String }),
  Schema.TaggedStruct("SourceChanged", { path: Schema.String }),
  Schema.TaggedStruct("UpstreamStale", { stage: Schema.String }),
  Schema.TaggedStruct("OutputMissing", { output: Schema.String, path: Schema.String }),
  Schema.TaggedStruct("OutputModified", { output: Schema.String, path: Schema.String }),
  /** An interrupted execution with this fingerprint left its work in staging; `from` is where it continues. */
  Schema.TaggedStruct("Resumable", { execution: Schema.String, from: Schema.optional(Schema.String) }),
  /**
   * The stage starts from a state (checkpoint) recorded with the prefix it would reach at `step`, by
   * `execution`, or, when that is null, to be written by `stage` earlier in this run.
   */
  Schema.TaggedStruct("Seeded", {
    stage: Schema.String,
    output: Schema.String,
    execution: Schema.NullOr(Schema.String),
    step: Schema.Number,
    total: Schema.Number,
    /** What computing the reused steps took the execution that recorded them, prorated. */
    savedMs: Schema.NullOr(Schema.Number)
  }),
  /** The cached execution's recorded params, inputs or worker no longer hash to its fingerprint. */
  Schema.TaggedStruct("RecordAltered", { execution: Schema.String })
)
export type StaleReason = typeof StaleReason.Type

export const PlanEntry = Schema.Struct({
  stage: Schema.String,
  kind: Schema.String,
  status: Schema.Literal("fresh", "stale"),
  reasons: Schema.Array(StaleReason),
  fingerprint: Schema.NullOr(Schema.String),
  /** From the last recorded successful duration of this stage, when known. */
  estimatedMs: Schema.NullOr(Schema.Number),
  execution: Schema.NullOr(Schema.String)
})
export type PlanEntry = typeof PlanEntry.Type

export const describeReason = (reason: StaleReason): string => {
  switch (reason._tag) {
    case "NeverRun":
      return "never run"
    case "ParamChanged":
      return `param ${reason.key} changed: ${reason.from ?? "(unset)"} -> ${reason.to ?? "(unset)"}`
    case "VersionChanged":
      return `stage version changed: ${reason.from} -> ${reason.to}`
    case "WorkerChanged":
      return `worker binary changed: ${short(reason.from)} -> ${short(reason.to)}`
    case "UpstreamChanged":
      return `upstream ${reason.stage} changed (input ${reason.input})`
    case "SourceChanged":
      return `source ${reason.path} changed`
    case "UpstreamStale":
      return `upstream ${reason.stage} will rerun`
    case "OutputMissing":
      return `output ${reason.output} is missing (${reason.path})`
    case "OutputModified":
      return `output ${reason.output} was modified (${reason.path})`
    case "Resumable":
      return `resumes interrupted execution ${reason.execution.slice(0, 8)} ${
        reason.from === undefined ? "(nothing kept yet: from the start)" : `from ${reason.from}`
      }`
    case "Seeded":
      return `resumes from ${reason.stage} ${reason.output}: ${reason.step} of ${reason.total} steps reused` + (
        reason.execution === null
          ? " (written earlier in this run)"
          : ` (execution ${reason.execution.slice(0, 8)}${
            reason.savedMs === null ? "" : `, ${formatMs(reason.savedMs)} saved`
          })`
      )
    case "RecordAltered":
      return `the lineage record of execution ${reason.execution.slice(0, 8)} was altered ` +
        `(its params, inputs or worker no longer hash to its fingerprint); not served from the cache`
  }
}

const short = (hash: string | null) => (hash === null ? "(none)" : hash.slice(0, 12))
