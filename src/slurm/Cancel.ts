/**
 * Cancelling jobs. Requests gather until the next flush (the poller's, or an interrupted execution's),
 * so that the jobs one Ctrl-C interrupts go to one scancel; an interrupted execution then waits until
 * Slurm reports its job ended, so that nothing the run submitted outlives it unnoticed.
 */
import { Deferred, Duration, Effect } from "effect"
import type { SlurmRun, Tracked } from "./SlurmRun.ts"
import { updateJob, warnOnce } from "./SlurmRun.ts"

/** Marks the job as being cancelled and queues it for the next scancel. */
export const requestCancel = (run: SlurmRun, t: Tracked) =>
  Effect.sync(() => {
    t.cancelling = true
    run.state.cancelRequests.add(t.jobId)
  })

/** Sends the queued cancellations with one scancel; a failing scancel is reported, not raised. */
export const flushCancels = (run: SlurmRun) =>
  Effect.suspend(() => {
    const requests = run.state.cancelRequests
    if (requests.size === 0) return Effect.void
    const ids = [...requests]
    requests.clear()
    return run.client.cancel(ids).pipe(Effect.catchAll((error) => warnOnce(run, error.message)))
  })

/** Cancels a job and waits (up to cancelTimeout) until Slurm reports it ended. */
export const cancelAndWait = (run: SlurmRun, t: Tracked) =>
  Effect.gen(function*() {
    if (t.finished) return
    yield* requestCancel(run, t)
    // Siblings interrupted by the same Ctrl-C join this scancel.
    yield* Effect.sleep(Duration.millis(20))
    yield* flushCancels(run)
    const ended = yield* Deferred.await(t.done).pipe(
      Effect.timeout(Duration.seconds(run.settings.cancelTimeout)),
      Effect.option
    )
    if (ended._tag === "None") {
      yield* updateJob(run, t, { state: "CANCELLING", reason: "still running when the run gave up waiting" })
      run.reporter.info(
        `slurm: job ${t.jobId} (${t.request.stage.id}) was cancelled but had not ended after ${run.settings.cancelTimeout}s`
      )
    }
  })
