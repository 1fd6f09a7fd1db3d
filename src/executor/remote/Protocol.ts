/**
 * The remote-job protocol, shared by every executor that runs a stage away from the engine: the
 * spec a job runs a stage from, and the events it reports back through the workspace. Jobs never
 * write the lineage database; they append these events to a file the engine follows.
 */
import { Schema } from "effect"

const PositiveInt = Schema.Int.pipe(Schema.positive())

/** How a job takes its params: see `JobSpec.mode`. */
export const JobMode = Schema.Literal("run", "reexecute")
export type JobMode = typeof JobMode.Type

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
  /**
   * The params (canonical JSON). In `run` mode, those the engine fingerprinted: the job refuses to run a
   * stage that resolves otherwise. In `reexecute` mode, those an execution recorded: the job runs them.
   */
  params: Schema.String,
  /**
   * `run` (also when absent): the stage as the pipeline resolves on the node, which must come out with
   * `params`. `reexecute`: an audit re-executing a recorded execution; the stage runs with `params`,
   * whatever the pipeline resolves to now (the code, the cluster's GPUs or the settings may have changed).
   */
  mode: Schema.optional(JobMode),
  inputs: Schema.Record({ key: Schema.String, value: Schema.String }),
  /** The recorded state the engine seeded the stage with (StageContext.seed), on the shared filesystem. */
  seed: Schema.optional(Schema.Struct({
    path: Schema.String,
    step: Schema.Number,
    stage: Schema.String,
    output: Schema.String,
    execution: Schema.String
  })),
  workDir: Schema.String,
  logPath: Schema.String,
  eventsPath: Schema.String,
  resumable: Schema.Boolean,
  /** 1 for the first submission of the execution; later ones start from a previous attempt's staging. */
  submission: PositiveInt,
  cpus: PositiveInt,
  /**
   * The execution's fence file (Fence.ts), written by the engine only: the attempt that may write
   * into the staging directory and report events. Any other attempt stops.
   */
  fencePath: Schema.String,
  /** Events files of the execution's earlier submissions: what they reported, for a stage that resumes. */
  earlierEvents: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] })
})
export type JobSpec = typeof JobSpec.Type
export type JobSpecInput = typeof JobSpec.Encoded

/**
 * Which attempt of an execution an event comes from: Slurm's restart count of the job (a requeued
 * job runs again under the same id, appending to the same events file). Absent: the first attempt.
 */
const attempt = { attempt: Schema.optionalWith(Schema.Int.pipe(Schema.nonNegative()), { default: () => 0 }) }

/**
 * A line of a job's events file. `start` opens an attempt; every line carries its attempt, since an
 * attempt Slurm has given up on (a node that stopped answering) may still be writing while the next
 * one runs: the engine takes lines from the current attempt only.
 */
export const JobEvent = Schema.Union(
  Schema.Struct({
    t: Schema.Literal("start"),
    ...attempt,
    host: Schema.String,
    pid: Schema.Int,
    at: Schema.Number
  }),
  Schema.Struct({ t: Schema.Literal("environment"), ...attempt, environment: Schema.Unknown }),
  Schema.Struct({ t: Schema.Literal("progress"), ...attempt, step: Schema.Number, total: Schema.Number }),
  Schema.Struct({
    t: Schema.Literal("metric"),
    ...attempt,
    name: Schema.String,
    step: Schema.Number,
    value: Schema.NullOr(Schema.Number)
  }),
  Schema.Struct({ t: Schema.Literal("result"), ...attempt, value: Schema.Unknown }),
  Schema.Struct({ t: Schema.Literal("failed"), ...attempt, error: Schema.Unknown }),
  Schema.Struct({ t: Schema.Literal("interrupted"), ...attempt })
)
export type JobEvent = typeof JobEvent.Type
/** An event as a job writes it: its attempt is the writer's. */
export type JobEventBody = JobEvent extends infer E ? E extends unknown ? Omit<E, "attempt"> : never : never

export const decodeJobEvent = Schema.decodeUnknownEither(Schema.parseJson(JobEvent))
