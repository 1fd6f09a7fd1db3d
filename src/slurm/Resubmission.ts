/**
 * Running one execution: submit it, wait for its job's outcome, and submit it again where Slurm,
 * not the stage, ended it. A job that ends PREEMPTED or NODE_FAIL (or is lost on a requeue) goes
 * again, up to maxResubmits; one that hits its time limit goes again only when the stage is
 * resumable and wrote a checkpoint it did not start from, so that the next job gets further. Every
 * submission is the same execution; each new one fences the jobs before it.
 */
import { Deferred, Effect, FiberId, Queue } from "effect"
import type { StageFailed } from "../domain/Errors.ts"
import { WorkerFailed } from "../domain/Errors.ts"
import type { ExecutionRequest } from "../executor/Executor.ts"
import { newestCheckpoint } from "../executor/remote/Resume.ts"
import { cancelAndWait } from "./Cancel.ts"
import type { Outcome, Pending, SlurmRun, Tracked } from "./SlurmRun.ts"

/** One submission of an execution; its outcome, and the events file its job wrote. */
const submitOnce = (
  run: SlurmRun,
  request: ExecutionRequest,
  submission: number,
  earlierEvents: ReadonlyArray<string>
): Effect.Effect<{ readonly outcome: Outcome; readonly eventsPath: string }, StageFailed> =>
  Effect.suspend(() => {
    const pending: Pending = {
      request,
      submission,
      earlierEvents,
      cancelled: false,
      current: undefined,
      tracked: Deferred.unsafeMake<Tracked, StageFailed>(FiberId.none)
    }
    return Queue.offer(run.state.pending, pending).pipe(
      Effect.zipRight(Deferred.await(pending.tracked)),
      Effect.flatMap((t) => Effect.map(Deferred.await(t.done), (outcome) => ({ outcome, eventsPath: t.eventsPath }))),
      Effect.onInterrupt(() =>
        Effect.suspend(() => {
          pending.cancelled = true
          return pending.current ? cancelAndWait(run, pending.current) : Effect.void
        })
      )
    )
  })

/** The stage's result, submitting again (as the same execution) while Slurm's interruptions allow it. */
export const executeWithResubmission = (run: SlurmRun, request: ExecutionRequest) =>
  Effect.gen(function*() {
    const { settings, reporter } = run
    const { ctx, stage } = request
    const earlierEvents: Array<string> = []
    /** The checkpoint the latest submission resumed from: a job that timed out without a newer one got nowhere. */
    let resumedFrom = stage.definition.resumable
      ? newestCheckpoint(ctx.workDir, Object.keys(stage.outputs))
      : undefined
    for (let submission = 1;; submission++) {
      const { eventsPath, outcome } = yield* submitOnce(run, request, submission, earlierEvents)
      earlierEvents.push(eventsPath)
      if (outcome._tag === "Succeeded") return outcome.value
      if (outcome._tag === "Failed") return yield* Effect.fail(outcome.error)
      if (outcome._tag === "TimedOut") {
        const failWith = (why: string) =>
          Effect.fail(
            new WorkerFailed({
              stage: outcome.error.stage,
              reason: `${outcome.error.reason}; ${why}`,
              exitCode: outcome.error.exitCode,
              signal: outcome.error.signal,
              logPath: outcome.error.logPath,
              logTail: outcome.error.logTail
            })
          )
        if (!stage.definition.resumable) return yield* Effect.fail(outcome.error)
        const checkpoint = newestCheckpoint(ctx.workDir, Object.keys(stage.outputs))
        if (checkpoint === undefined) {
          return yield* failWith(
            "it wrote no checkpoint, so a resubmission would start over and run out of time again"
          )
        }
        if (checkpoint === resumedFrom) {
          return yield* failWith(`it wrote no checkpoint after ${checkpoint}, which it resumed from`)
        }
        if (submission > settings.maxResubmits) {
          return yield* failWith(
            `its checkpoints up to ${checkpoint} are kept for the next run (resubmitted ${settings.maxResubmits} time(s), slurm.maxResubmits)`
          )
        }
        resumedFrom = checkpoint
        reporter.info(
          `  ${stage.id}: job ${outcome.jobId} hit its time limit${outcome.limit ? ` (${outcome.limit})` : ""}; ` +
            `resubmitting (${submission} of ${settings.maxResubmits}), resuming from ${checkpoint}`
        )
        yield* ctx.log(`[slurm] job ${outcome.jobId} hit its time limit; resubmitting, resuming from ${checkpoint}`)
        continue
      }
      if (submission > settings.maxResubmits) return yield* Effect.fail(outcome.error)
      reporter.info(
        `  ${stage.id}: Slurm job ${outcome.jobId} ended ${outcome.state}; submitting it again ` +
          `(${submission} of ${settings.maxResubmits})`
      )
      yield* ctx.log(`[slurm] job ${outcome.jobId} ended ${outcome.state}; resubmitting`)
    }
  })
