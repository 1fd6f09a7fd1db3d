/**
 * The executor port: how a stale stage's body runs, in this process or elsewhere (a batch job on a
 * cluster). The engine decides what runs and records everything; an executor only runs a body and
 * reports what it returned, streaming its progress and metrics through the stage context meanwhile.
 *
 * Adapters live beside this port (`local/`, and `../slurm/SlurmExecutor.ts`); this module knows
 * none of them. Each adapter also cleans up what a killed run left of its own executions: a
 * `Recoverer`. The engine asks the recoverer of whichever executor recorded each abandoned execution,
 * from the list composed where executors are chosen (the command line), so a local run still cancels
 * the cluster jobs a killed Slurm run left, without the engine knowing about Slurm.
 */
import { Context, Effect, Option } from "effect"
import type { StageFailed, WorkerFailed } from "../domain/Errors.ts"
import type { ExecutionRow } from "../lineage/Lineage.ts"
import type { ResolvedStage } from "../Pipeline.ts"
import type { ExecutorInfo, StageContext } from "../Stage.ts"

export interface ExecutionRequest {
  readonly stage: ResolvedStage
  readonly ctx: StageContext<unknown>
  readonly executionId: string
  readonly fingerprint: string
  /**
   * An audit re-executing a recorded execution: `stage` carries the params it recorded, which the
   * pipeline may no longer resolve to. An executor that resolves the pipeline again elsewhere (a batch
   * job) must run these params, not the ones it resolves (the job spec's `reexecute` mode).
   */
  readonly reexecution?: boolean
}

/** An execution a killed run left marked running, as its executor needs to clean up after it. */
export type AbandonedExecution = Pick<ExecutionRow, "id" | "stageId" | "executor" | "workerPid" | "workerIdentity">

/** Cleans up after the abandoned executions an executor recorded (called while holding the workspace lock). */
export interface Recoverer {
  /** The executor name the executions were recorded with. */
  readonly executor: string
  readonly recover: (abandoned: ReadonlyArray<AbandonedExecution>) => Effect.Effect<void>
}

export interface ExecutorShape {
  /** Recorded with runs and executions; the recoverer of the same name cleans up after them. */
  readonly name: string
  /** What stages settle their params against (e.g. backend auto -> cuda when GPUs exist). */
  readonly info: ExecutorInfo
  /**
   * Whether stages hold this machine's CPU and GPU slots while they run; a cluster executor leaves
   * placement to the cluster's scheduler.
   */
  readonly localSlots: boolean
  /** Cleans up after this executor's own executions that a killed run left. */
  readonly recoverer: Recoverer
  /**
   * Runs one attempt at a stage body and returns its result encoded with the stage's result schema;
   * interruption stops it.
   */
  readonly execute: (request: ExecutionRequest) => Effect.Effect<unknown, StageFailed | WorkerFailed>
}

export class Executor extends Context.Tag("flame-pipe/Executor")<Executor, ExecutorShape>() {}

/**
 * The recoverers of every executor a workspace may have been run with, composed at the top layer.
 * Where none are given, the engine asks only the executor it runs with.
 */
export class Recoverers extends Context.Tag("flame-pipe/Recoverers")<Recoverers, ReadonlyArray<Recoverer>>() {}

/**
 * Hands each recoverer the abandoned executions recorded under its executor's name, in the order
 * given (the first of a name wins); executions of an executor without a recoverer are only marked
 * interrupted, as they already are.
 */
export const recoverAbandoned = (
  abandoned: ReadonlyArray<AbandonedExecution>,
  recoverers: ReadonlyArray<Recoverer>
): Effect.Effect<void> =>
  Effect.gen(function*() {
    const asked = new Set<string>()
    for (const recoverer of recoverers) {
      if (asked.has(recoverer.executor)) continue
      asked.add(recoverer.executor)
      const own = abandoned.filter((e) => e.executor === recoverer.executor)
      if (own.length > 0) yield* recoverer.recover(own)
    }
  })

/** The executor's own recoverer first, then those composed at the top layer, if any. */
export const recoverersFor = (executor: ExecutorShape): Effect.Effect<ReadonlyArray<Recoverer>> =>
  Effect.map(
    Effect.serviceOption(Recoverers),
    (composed) => [executor.recoverer, ...Option.getOrElse(composed, () => [])]
  )
