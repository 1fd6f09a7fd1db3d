/**
 * The local executor: stage bodies run in the engine's process and their workers are this machine's
 * processes, holding its CPU and GPU slots.
 */
import { Effect, Layer } from "effect"
import { Reporter } from "../../engine/Reporter.ts"
import { runStageBody } from "../../engine/StageRun.ts"
import type { ExecutorInfo } from "../../Stage.ts"
import { stopAbandonedGroup } from "../../worker/processGroup.ts"
import type { Recoverer } from "../Executor.ts"
import { Executor } from "../Executor.ts"

/**
 * Workers (and compilers) a killed local run left lead their own process groups and outlive it; they
 * are stopped, but only while their pid is still the process recorded: a pid reused since by an
 * unrelated process is left alone.
 */
export const localRecoverer: Effect.Effect<Recoverer, never, Reporter> = Effect.map(Reporter, (reporter) => ({
  executor: "local",
  recover: (abandoned) =>
    Effect.forEach(abandoned, (execution) =>
      execution.workerPid === null ? Effect.void : Effect.gen(function*() {
        const outcome = yield* stopAbandonedGroup(execution.workerPid!, execution.workerIdentity)
        if (outcome === "stopped") {
          reporter.info(`stopped what the interrupted ${execution.stageId} left running (pid ${execution.workerPid})`)
        }
      }), { discard: true })
}))

export const LocalExecutor = {
  layer: (info: ExecutorInfo = { gpus: 0 }) =>
    Layer.effect(
      Executor,
      Effect.map(localRecoverer, (recoverer) =>
        Executor.of({
          name: "local",
          info,
          localSlots: true,
          recoverer,
          execute: ({ ctx, stage }) => runStageBody(stage, ctx)
        }))
    )
}
