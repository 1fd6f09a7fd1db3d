/**
 * The Slurm executor's domain: its settings (from the pipeline config), the spec a batch job runs a
 * stage from, and the events a job reports back through the workspace. Compute nodes never write
 * the lineage database; they append these events to a file the engine follows.
 */
import { Schema } from "effect"

/** Slurm's time formats: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS, or UNLIMITED. */
const SLURM_TIME = /^(?:\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d{1,2}(?::\d{1,2}(?::\d{1,2})?)?|UNLIMITED|INFINITE)$/i

export const SlurmTime = Schema.String.pipe(
  Schema.filter((s) => SLURM_TIME.test(s), {
    message: (issue) =>
      `expected a Slurm time limit (minutes, HH:MM:SS, D-HH:MM:SS or UNLIMITED), got ${JSON.stringify(issue.actual)}`
  })
)

const Positive = Schema.Number.pipe(Schema.positive())
const PositiveInt = Schema.Int.pipe(Schema.positive())

/** Settings for the stages whose id matches `match` (a glob: `*` matches any characters). Later rules win. */
export const SlurmStageRule = Schema.Struct({
  match: Schema.String,
  partition: Schema.optional(Schema.String),
  account: Schema.optional(Schema.String),
  qos: Schema.optional(Schema.String),
  time: Schema.optional(SlurmTime),
  /** Extra sbatch flags, e.g. ["--exclusive", "--constraint=h100"]; they override generated ones. */
  sbatch: Schema.optional(Schema.Array(Schema.String)),
  /** Whether these stages may be submitted together as a job array. */
  array: Schema.optional(Schema.Boolean)
})
export type SlurmStageRule = typeof SlurmStageRule.Type

export const SlurmSettings = Schema.Struct({
  partition: Schema.optional(Schema.String),
  account: Schema.optional(Schema.String),
  qos: Schema.optional(Schema.String),
  time: Schema.optional(SlurmTime),
  sbatch: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  /** Submissions per second (sbatch calls; an array job is one), and how many may go at once. */
  submitRate: Schema.optionalWith(Positive, { default: () => 2 }),
  submitBurst: Schema.optionalWith(PositiveInt, { default: () => 5 }),
  /** Seconds between two looks at the queue (one squeue call for all of a run's jobs). */
  poll: Schema.optionalWith(Positive, { default: () => 3 }),
  /** Submit stages of the same kind and resources that become ready together as one job array. */
  arrays: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  arrayMax: Schema.optionalWith(PositiveInt, { default: () => 1000 }),
  /** Resubmissions of a job that Slurm preempted or lost with its node (requeues by Slurm do not count). */
  maxResubmits: Schema.optionalWith(Schema.Int.pipe(Schema.nonNegative()), { default: () => 3 }),
  /** GPUs per node that stages may settle on (backend auto -> cuda), or `auto` to ask sinfo. */
  gpusPerNode: Schema.optionalWith(Schema.Union(Schema.Int.pipe(Schema.nonNegative()), Schema.Literal("auto")), {
    default: () => "auto" as const
  }),
  /** The node executable on compute nodes; by default the one running the engine. */
  node: Schema.optional(Schema.String),
  /** Seconds to wait for cancelled jobs to end before giving up on them. */
  cancelTimeout: Schema.optionalWith(Positive, { default: () => 60 }),
  stages: Schema.optionalWith(Schema.Array(SlurmStageRule), { default: () => [] })
})
export type SlurmSettings = typeof SlurmSettings.Type
export type SlurmSettingsInput = typeof SlurmSettings.Encoded

/** What a batch job needs to run one stage: how to resolve the pipeline, and where everything is. */
export const JobSpec = Schema.Struct({
  version: Schema.Literal(1),
  executionId: Schema.String,
  stageId: Schema.String,
  pipeline: Schema.Struct({
    /** A pipeline name or the absolute path of a pipeline module. */
    ref: Schema.String,
    preset: Schema.String,
    overrides: Schema.Array(Schema.String),
    config: Schema.Record({ key: Schema.String, value: Schema.String }),
    gpus: Schema.Number
  }),
  /** The params the engine fingerprinted (canonical JSON): the job refuses to run a stage that resolves otherwise. */
  params: Schema.String,
  inputs: Schema.Record({ key: Schema.String, value: Schema.String }),
  workDir: Schema.String,
  logPath: Schema.String,
  eventsPath: Schema.String,
  resumable: Schema.Boolean,
  /** 1 for the first submission of the execution; later ones start from a previous attempt's staging. */
  submission: PositiveInt,
  cpus: PositiveInt
})
export type JobSpec = typeof JobSpec.Type

/** A line of a job's events file. `start` opens an attempt (a requeued job starts again). */
export const JobEvent = Schema.Union(
  Schema.Struct({
    t: Schema.Literal("start"),
    attempt: Schema.Int,
    host: Schema.String,
    pid: Schema.Int,
    at: Schema.Number
  }),
  Schema.Struct({ t: Schema.Literal("environment"), environment: Schema.Unknown }),
  Schema.Struct({ t: Schema.Literal("progress"), step: Schema.Number, total: Schema.Number }),
  Schema.Struct({
    t: Schema.Literal("metric"),
    name: Schema.String,
    step: Schema.Number,
    value: Schema.NullOr(Schema.Number)
  }),
  Schema.Struct({ t: Schema.Literal("result"), value: Schema.Unknown }),
  Schema.Struct({ t: Schema.Literal("failed"), error: Schema.Unknown }),
  Schema.Struct({ t: Schema.Literal("interrupted") })
)
export type JobEvent = typeof JobEvent.Type

export const decodeJobEvent = Schema.decodeUnknownEither(Schema.parseJson(JobEvent))

/** Slurm job states after which the job will not run again by itself. */
export const terminalStates: ReadonlySet<string> = new Set([
  "BOOT_FAIL",
  "CANCELLED",
  "COMPLETED",
  "DEADLINE",
  "FAILED",
  "NODE_FAIL",
  "OUT_OF_MEMORY",
  "PREEMPTED",
  "REVOKED",
  "TIMEOUT"
])

/** Terminal states caused by the cluster rather than the stage: the job is worth submitting again. */
export const lostStates: ReadonlySet<string> = new Set(["BOOT_FAIL", "NODE_FAIL", "PREEMPTED"])

/** States of a job that Slurm put back in the queue (it runs again under the same id). */
export const requeuedStates: ReadonlySet<string> = new Set(["REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD"])
