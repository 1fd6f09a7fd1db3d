/**
 * How a stale stage's body runs: in this process (local), or as a batch job on a cluster (slurm).
 * The engine decides what runs and records everything; an executor only runs a body and reports what
 * it returned, streaming its progress and metrics through the stage context meanwhile.
 */
import { Context, Effect, Layer } from "effect"
import type { StageFailed, WorkerFailed } from "../domain/Errors.ts"
import type { Reporter } from "../engine/Reporter.ts"
import type { ExecutionRow, Lineage } from "../lineage/Lineage.ts"
import type { ResolvedStage } from "../Pipeline.ts"
import { cancelOrphanedJobs } from "../slurm/Orphans.ts"
import { SlurmClient } from "../slurm/SlurmClient.ts"
import type { ExecutorInfo, StageContext } from "../Stage.ts"

export interface ExecutionRequest {
  readonly stage: ResolvedStage
  readonly ctx: StageContext<unknown>
  readonly executionId: string
  readonly fingerprint: string
}

export interface ExecutorShape {
  /** Recorded with runs and executions. */
  readonly name: "local" | "slurm"
  /** What stages settle their params against (e.g. backend auto -> cuda when GPUs exist). */
  readonly info: ExecutorInfo
  /**
   * Whether stages hold this machine's CPU and GPU slots while they run; a cluster executor leaves
   * placement to the cluster's scheduler.
   */
  readonly localSlots: boolean
  /** Cleans up after executions a killed engine left running (called while holding the workspace lock). */
  readonly recover: (abandoned: ReadonlyArray<ExecutionRow>) => Effect.Effect<void>
  /** Runs one attempt at a stage body and returns its (encoded) result; interruption stops it. */
  readonly execute: (request: ExecutionRequest) => Effect.Effect<unknown, StageFailed | WorkerFailed>
}

export class Executor extends Context.Tag("flame-pipe/Executor")<Executor, ExecutorShape>() {
  /** Stage bodies run in this process; their child workers are this machine's processes. */
  static readonly local = (info: ExecutorInfo = { gpus: 0 }) =>
    Layer.effect(
      Executor,
      Effect.map(Effect.context<Lineage | Reporter>(), (context) => ({
        name: "local" as const,
        info,
        localSlots: true,
        // Orphaned local workers are killed by their recorded pid in the engine; jobs a killed run left
        // on a cluster are cancelled before this run reuses their staging directories.
        recover: (abandoned) =>
          abandoned.some((e) => e.executor === "slurm") ?
            cancelOrphanedJobs(abandoned).pipe(Effect.provide(context), Effect.provide(SlurmClient.Default)) :
            Effect.void,
        execute: ({ ctx, stage }) => stage.definition.run(ctx)
      }))
    )
}
