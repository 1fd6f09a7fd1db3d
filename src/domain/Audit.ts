/**
 * What `flame-pipe audit` finds: the typed report it prints with --json, records in lineage, and
 * the HTML report renders.
 */
import { Schema } from "effect"

export const Severity = Schema.Literal("fail", "warn", "info")
export type Severity = typeof Severity.Type

export const FindingCode = Schema.Literal(
  // integrity: a recorded artifact against what is on disk
  "modified",
  "missing",
  "collected",
  // completeness: what must be recorded for a result to be traceable
  "never-run",
  "upstream-unresolved",
  "not-succeeded",
  "no-environment",
  "output-not-recorded",
  "input-not-recorded",
  "input-unavailable",
  "unrooted",
  // lineage: rows that contradict each other
  "fingerprint-mismatch",
  "input-hash-mismatch",
  "producer-missing",
  // drift: the current definition would not reuse this execution
  "stale"
)
export type FindingCode = typeof FindingCode.Type

export const FindingCheck = Schema.Literal("integrity", "completeness", "lineage", "drift")
export type FindingCheck = typeof FindingCheck.Type

export const ArtifactRef = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  /** Workspace-relative. */
  path: Schema.String
})
export type ArtifactRef = typeof ArtifactRef.Type

export const Finding = Schema.Struct({
  check: FindingCheck,
  severity: Severity,
  code: FindingCode,
  stage: Schema.String,
  execution: Schema.NullOr(Schema.String),
  artifact: Schema.NullOr(ArtifactRef),
  message: Schema.String,
  /** Files inside a directory artifact the finding points at, relative to it. */
  files: Schema.Array(Schema.String)
})
export type Finding = typeof Finding.Type

export const FileDifference = Schema.Struct({
  /** Relative to the output; "" for a file output. */
  path: Schema.String,
  /** missing: only in the stored copy; extra: only in the re-execution. */
  change: Schema.Literal("differs", "missing", "extra"),
  storedSize: Schema.NullOr(Schema.Number),
  rebuiltSize: Schema.NullOr(Schema.Number),
  /** Byte offset of the first difference, for files present on both sides. */
  firstDifference: Schema.NullOr(Schema.Number)
})
export type FileDifference = typeof FileDifference.Type

export const OutputComparison = Schema.Struct({
  name: Schema.String,
  recordedHash: Schema.String,
  rebuiltHash: Schema.NullOr(Schema.String),
  /** The rebuilt output hashes to what lineage recorded. */
  equal: Schema.Boolean,
  /** Hash of the copy in the store now; null when it is gone. */
  storedHash: Schema.NullOr(Schema.String),
  /** Per-file differences between the stored copy and the rebuilt one (when they differ). */
  files: Schema.Array(FileDifference)
})
export type OutputComparison = typeof OutputComparison.Type

export const MetricComparison = Schema.Struct({
  name: Schema.String,
  recorded: Schema.NullOr(Schema.Number),
  rebuilt: Schema.NullOr(Schema.Number),
  difference: Schema.NullOr(Schema.Number),
  bound: Schema.Number,
  ok: Schema.Boolean
})
export type MetricComparison = typeof MetricComparison.Type

export const ReproducibilityClass = Schema.Literal("bitwise", "tolerance")

export const ReexecutionStatus = Schema.Literal("reproduced", "differs", "failed", "skipped")
export type ReexecutionStatus = typeof ReexecutionStatus.Type

export const Reexecution = Schema.Struct({
  stage: Schema.String,
  execution: Schema.String,
  kind: Schema.String,
  reproducibility: ReproducibilityClass,
  /** Why it was re-executed: named, sampled, all, to restore it, or to rebuild another one's input. */
  selectedBy: Schema.Literal("stages", "sample", "all", "restore", "input"),
  status: ReexecutionStatus,
  reason: Schema.NullOr(Schema.String),
  durationMs: Schema.NullOr(Schema.Number),
  recordedDurationMs: Schema.NullOr(Schema.Number),
  outputs: Schema.Array(OutputComparison),
  metrics: Schema.Array(MetricComparison),
  /** Inputs that were not in the store and were rebuilt first. */
  rebuiltInputs: Schema.Array(Schema.String),
  /** Outputs put back into the store (--restore). */
  restored: Schema.Array(Schema.String)
})
export type Reexecution = typeof Reexecution.Type

export const EnvironmentSnapshot = Schema.Struct({
  id: Schema.String,
  gitCommit: Schema.NullOr(Schema.String),
  gitDirty: Schema.NullOr(Schema.Boolean),
  nodeVersion: Schema.String,
  platform: Schema.String,
  host: Schema.String,
  compilers: Schema.Record({ key: Schema.String, value: Schema.String }),
  gpus: Schema.Array(Schema.Struct({ name: Schema.String, driver: Schema.String }))
})
export type EnvironmentSnapshot = typeof EnvironmentSnapshot.Type

export const EnvironmentDifference = Schema.Struct({
  field: Schema.String,
  recorded: Schema.NullOr(Schema.String),
  current: Schema.NullOr(Schema.String)
})
export type EnvironmentDifference = typeof EnvironmentDifference.Type

export const RecordedEnvironment = Schema.Struct({
  environment: EnvironmentSnapshot,
  executions: Schema.Number,
  /** A few of the stages that ran there. */
  stages: Schema.Array(Schema.String),
  differences: Schema.Array(EnvironmentDifference)
})
export type RecordedEnvironment = typeof RecordedEnvironment.Type

export const WorkerBinary = Schema.Struct({
  /** The binary's path now: the stage's worker, or the artifact it consumed as `worker`. */
  path: Schema.String,
  recordedHash: Schema.String,
  currentHash: Schema.NullOr(Schema.String),
  executions: Schema.Number,
  changed: Schema.Boolean
})
export type WorkerBinary = typeof WorkerBinary.Type

export const AuditTarget = Schema.Struct({
  kind: Schema.Literal("pipeline", "stage", "execution"),
  name: Schema.String,
  pipeline: Schema.NullOr(Schema.String),
  preset: Schema.NullOr(Schema.String)
})
export type AuditTarget = typeof AuditTarget.Type

export const AuditReport = Schema.Struct({
  id: Schema.String,
  target: AuditTarget,
  workspace: Schema.String,
  startedAt: Schema.Number,
  durationMs: Schema.Number,
  /** Quick audits trust the stat cache for files whose (device, inode, size, mtime) did not change. */
  quick: Schema.Boolean,
  status: Schema.Literal("passed", "failed"),
  summary: Schema.Struct({
    executions: Schema.Number,
    artifacts: Schema.Number,
    bytesHashed: Schema.Number,
    failures: Schema.Number,
    warnings: Schema.Number,
    reexecuted: Schema.Number,
    reproduced: Schema.Number
  }),
  findings: Schema.Array(Finding),
  reexecution: Schema.Struct({
    seed: Schema.Number,
    results: Schema.Array(Reexecution)
  }),
  environment: Schema.Struct({
    current: EnvironmentSnapshot,
    recorded: Schema.Array(RecordedEnvironment),
    workers: Schema.Array(WorkerBinary)
  }),
  /** What the reader should know about how the audit ran (a live run, definitions it could not load...). */
  notes: Schema.Array(Schema.String)
})
export type AuditReport = typeof AuditReport.Type
