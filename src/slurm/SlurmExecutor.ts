/**
 * The Slurm executor: each stale stage runs as a batch job carrying its resources, through
 * `flame-pipe job` on the compute node. The engine stays the only writer of the lineage database:
 * jobs append events (progress, metrics, result) to a file in the workspace, which the engine
 * follows along with the queue.
 *
 * - Submissions go through one queue, at most `submitRate` sbatch calls per second; stages of the
 *   same kind and resources that become ready together are submitted as one job array.
 * - One squeue call per poll follows every job of the run. Finished jobs are looked up with
 *   scontrol (which keeps them for MinJobAge), then sacct; when accounting is disabled and the
 *   controller has forgotten a job, its events file is the last word.
 * - A job Slurm requeues (scontrol requeue, preemption in REQUEUE mode, a failed node) keeps its id
 *   and runs again; it is followed, not resubmitted, and resumable stages continue from their
 *   staging directory. A job that ends PREEMPTED or NODE_FAIL is submitted again (up to
 *   maxResubmits), as the same execution.
 * - A job that hits its time limit (TIMEOUT) fails its stage, saying so and naming the limit; unless
 *   the stage is resumable and wrote a new checkpoint: then it is submitted again as the same
 *   execution (counted against maxResubmits) and continues from that checkpoint.
 * - Attempts are fenced (Fence.ts): of the attempts of an execution, only the one the engine names
 *   in its fence file may write into staging or report, and the engine reads the events of that
 *   attempt only. An attempt Slurm gave up on but that still runs stops on its own.
 * - Interruption (Ctrl-C) cancels the run's jobs with scancel and waits until Slurm reports them gone.
 */
import { Effect, Layer } from "effect"
import type { Reporter } from "../engine/Reporter.ts"
import type { Recoverer } from "../executor/Executor.ts"
import { Executor } from "../executor/Executor.ts"
import type { Lineage } from "../lineage/Lineage.ts"
import { poller } from "./Following.ts"
import { cancelOrphanedJobs } from "./Orphans.ts"
import { executeWithResubmission } from "./Resubmission.ts"
import { SlurmClient } from "./SlurmClient.ts"
import type { SlurmInvocation } from "./SlurmRun.ts"
import { makeSlurmRun } from "./SlurmRun.ts"
import { makeSubmitter } from "./Submission.ts"

export type { SlurmInvocation } from "./SlurmRun.ts"

/**
 * The parts, each in its module: Submission (the queue, job arrays, sbatch), Following (the poller,
 * events, outcomes), Cancel (scancel, waiting for it) and Resubmission (each execution's submissions).
 * They share one SlurmRun; the submitter and the poller run for as long as the executor's scope.
 */
const make = (invocation: SlurmInvocation) =>
  Effect.gen(function*() {
    const run = yield* makeSlurmRun(invocation)
    const submitter = yield* makeSubmitter(run)
    yield* Effect.forkScoped(submitter)
    yield* Effect.forkScoped(poller(run))
    return Executor.of({
      name: "slurm",
      info: { gpus: invocation.gpusPerNode },
      localSlots: false,
      recoverer: yield* slurmRecoverer,
      execute: (request) => executeWithResubmission(run, request)
    })
  })

/**
 * Jobs a killed run left queued or running are cancelled before this run reuses their staging
 * directories; the Slurm client is only made when there are some.
 */
export const slurmRecoverer: Effect.Effect<Recoverer, never, Lineage | Reporter> = Effect.map(
  Effect.context<Lineage | Reporter>(),
  (context) => ({
    executor: "slurm",
    recover: (abandoned) =>
      cancelOrphanedJobs(abandoned).pipe(Effect.provide(SlurmClient.Default), Effect.provide(context))
  })
)

export const SlurmExecutor = {
  layer: (invocation: SlurmInvocation) => Layer.scoped(Executor, make(invocation))
}
