/**
 * Stages: the unit of caching. A definition says what a stage is (typed params, declared outputs,
 * typed result, resources, version, body); a node places a definition in a pipeline with an id,
 * param values and references to upstream outputs.
 */
import type { Effect, Schema } from "effect"
import type { StageFailed, WorkerFailed } from "./domain/Errors.ts"

export type OutputKind = "file" | "dir"

/** What a stage may know about the executor when its params are settled. */
export interface ExecutorInfo {
  readonly gpus: number
}

/** What a stage needs; cpus, gpus and memory are per node (nodes > 1 only under a cluster executor). */
export interface Resources {
  readonly cpus: number
  readonly gpus: number
  readonly memoryMb: number
  readonly nodes: number
}

export const defaultResources: Resources = { cpus: 1, gpus: 0, memoryMb: 512, nodes: 1 }

/**
 * How far a re-execution must agree with the original (used by audits): every output byte-identical,
 * or named numbers of the stage's result within absolute bounds. A metric name is a dotted path into
 * the result; `*` stands for any one key (`tasks.*.acc.value`).
 */
export type Reproducibility =
  | { readonly _tag: "bitwise" }
  | { readonly _tag: "tolerance"; readonly metrics: Readonly<Record<string, number>> }

/** What a stage's prefix fingerprints are made of besides its params: what any fingerprint has, but its id. */
export interface PrefixParts {
  readonly kind: string
  readonly version: string
  /** Content hash of each consumed upstream output, by input name. */
  readonly inputs: Readonly<Record<string, string>>
  readonly workerHash: string | null
}

/**
 * The states along a stage's computation (a training run's checkpoints), each identified by what
 * determined it. Two stages whose prefix fingerprints agree at a step hold the same state there,
 * whatever their ids and params: the second need not compute it again.
 */
export interface StagePrefixes {
  /** Everything fixed for the whole computation (model, data, optimizer...): only one family can match. */
  readonly family: string
  /** Steps of the whole computation. A stage never starts from its own last state. */
  readonly total: number
  /** The step of each output that is one of these states, by output name. */
  readonly steps: Readonly<Record<string, number>>
  /** The prefix fingerprint of the state after `step` steps. */
  readonly at: (step: number) => string
}

/** A recorded state another execution wrote, which this attempt starts from instead of step 0. */
export interface StageSeed {
  /** Absolute path of the state (a checkpoint directory); read it, never write into it. */
  readonly path: string
  readonly step: number
  readonly stage: string
  readonly output: string
  readonly execution: string
}

/** What a stage body can see and do while it runs. */
export interface StageContext<P> {
  readonly stageId: string
  readonly params: P
  /** Absolute paths of the upstream outputs this stage consumes, by input name. */
  readonly inputs: Readonly<Record<string, string>>
  /**
   * Absolute staging path of a declared output (further components name a file inside it). Nothing
   * there is visible until the stage succeeds. A path that would resolve outside the stage's directory
   * is refused: it throws a StageFailed naming the stage and the name.
   */
  readonly output: (name: string, ...more: ReadonlyArray<string>) => string
  /** The staging directory itself; kept across interruptions so resumable stages can continue. */
  readonly workDir: string
  readonly logPath: string
  /** GPU ids handed to this stage (also exported to workers as CUDA_VISIBLE_DEVICES). */
  readonly gpus: ReadonlyArray<string>
  readonly cpus: number
  readonly log: (message: string) => Effect.Effect<void>
  readonly progress: (step: number, total: number) => Effect.Effect<void>
  readonly metric: (name: string, step: number, value: number | null) => Effect.Effect<void>
  /** Records a started child process, so a later run can clean up after a killed engine. */
  readonly workerStarted: (pid: number) => Effect.Effect<void>
  /**
   * A part of the outputs is complete (a checkpoint while training goes on): the engine may hash it
   * now instead of after the stage. Absent where the executor cannot (the work runs elsewhere).
   */
  readonly outputReady?: (target: string) => void
  /**
   * What earlier attempts of this execution reported for a metric (one value per step, the latest,
   * in step order): a stage resuming from a checkpoint they wrote reports the training it continues.
   * Absent where the executor keeps no such history (a requeued or resubmitted Slurm job has it).
   */
  readonly recordedMetric?: (name: string) => ReadonlyArray<{ readonly step: number; readonly value: number | null }>
  /**
   * Where to start instead of step 0 (StageDefinition.prefixes): the engine found this state recorded
   * with the same prefix. The own outputs at or before its step are already in the staging directory,
   * linked from the executions that recorded them. Absent when the stage starts from scratch (always,
   * in an audit's re-execution).
   */
  readonly seed?: StageSeed
}

/** The metrics to load, by the name of the input whose producing execution a stage wants facts of. */
export type LineageFactsRequest = Readonly<Record<string, ReadonlyArray<string>>>

export interface StageDefinition<P = unknown, PI = unknown, R = unknown, RI = unknown> {
  /** What kind of stage this is, e.g. "toy/filter"; shown in plans and lineage. */
  readonly kind: string
  /** Bump when the body's behaviour changes: it is part of the fingerprint. */
  readonly version: string
  readonly params: Schema.Schema<P, PI>
  readonly outputs: (params: P) => Readonly<Record<string, OutputKind>>
  readonly result: Schema.Schema<R, RI>
  readonly resources?: (params: P) => Partial<Resources>
  /** Path of the compiled worker the body runs, if any: its content hash feeds the fingerprint. */
  readonly worker?: (params: P) => string
  /** Files or directories outside the workspace that the body reads: their content hashes feed the fingerprint. */
  readonly sources?: (params: P) => ReadonlyArray<string>
  /**
   * Settles params that depend on where the stage runs (e.g. backend `auto` -> `cuda` when the executor
   * has GPUs) before fingerprinting, so the resolved value is what gets recorded.
   */
  readonly settle?: (params: P, executor: ExecutorInfo) => P
  /** Stages that keep their staging directory across interruptions (training resumes from checkpoints). */
  readonly resumable?: boolean
  /** For a resumable stage: what a new attempt would continue from in this staging directory (`iter_0000020`). */
  readonly resumePoint?: (workDir: string) => string | undefined
  /**
   * For a resumable stage whose outputs are states along one computation: their prefix fingerprints
   * (recorded in lineage with each output), so that a stale stage can start from a state any execution
   * recorded with the same prefix (`ctx.seed`). Undefined where the states cannot be shared.
   */
  readonly prefixes?: (params: P, parts: PrefixParts) => StagePrefixes | undefined
  /**
   * Lineage facts the body reads about the executions that produced its inputs (a report shows their
   * params, metrics, environments): for each input it names, the metrics to load. The engine reads
   * them from lineage before the body runs and writes them into the staging directory, where the body
   * reads them (`readLineageFacts`, src/lineage/reportFacts.ts): a body never opens the database, which
   * may be on another machine. They are not part of the fingerprint: they say how the inputs came
   * about (which execution, when, where), not what they hold, which the inputs' content hashes fix;
   * an upstream rerun that reproduces its outputs bit for bit leaves the stage fresh.
   */
  readonly lineageFacts?: (params: P, inputs: ReadonlyArray<string>) => LineageFactsRequest
  /** Defaults to bitwise; a function when it depends on the params (e.g. the backend a stage runs on). */
  readonly reproducibility?: Reproducibility | ((params: P) => Reproducibility)
  readonly run: (ctx: StageContext<P>) => Effect.Effect<R, StageFailed | WorkerFailed>
}

/** Erased definition type, for collections of heterogeneous stages. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyStageDefinition = StageDefinition<any, any, any, any>

export const define = <P, PI, R, RI>(definition: StageDefinition<P, PI, R, RI>): StageDefinition<P, PI, R, RI> =>
  definition

/** A reference to an upstream stage's declared output. */
export interface OutputRef {
  readonly stage: string
  readonly output: string
}

export const ref = (stage: string, output: string): OutputRef => ({ stage, output })

/** A stage placed in a pipeline. Params are given in their encoded (JSON) form and decoded before anything runs. */
export interface StageNode {
  readonly id: string
  readonly definition: AnyStageDefinition
  readonly params: Readonly<Record<string, unknown>>
  readonly inputs: Readonly<Record<string, OutputRef>>
}

export const node = <P, PI, R, RI>(
  definition: StageDefinition<P, PI, R, RI>,
  options: {
    readonly id: string
    readonly params?: Partial<PI>
    readonly inputs?: Readonly<Record<string, OutputRef>>
  }
): StageNode => ({
  id: options.id,
  definition,
  params: (options.params ?? {}) as Record<string, unknown>,
  inputs: options.inputs ?? {}
})
