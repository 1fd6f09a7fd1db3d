/**
 * Jobs left behind by a killed engine. Their executions are marked interrupted by the next run,
 * whichever executor it uses; a job still queued or running would keep writing into a staging
 * directory a new attempt may be using, so it is cancelled first.
 */
import { Duration, Effect, Schedule } from "effect"
import { terminalStates } from "../domain/Slurm.ts"
import { Reporter } from "../engine/Reporter.ts"
import { Lineage } from "../lineage/Lineage.ts"
import { makeJobRecords } from "./JobRecords.ts"
import { SlurmClient } from "./SlurmClient.ts"

export const cancelOrphanedJobs = (
  abandoned: ReadonlyArray<{ readonly id: string; readonly executor: string }>
): Effect.Effect<void, never, Lineage | Reporter | SlurmClient> =>
  Effect.gen(function*() {
    const executions = abandoned.filter((e) => e.executor === "slurm").map((e) => e.id)
    if (executions.length === 0) return
    const records = makeJobRecords(yield* Lineage)
    const reporter = yield* Reporter
    const jobs = yield* records.unfinished(executions)
    if (jobs.length === 0) return
    const client = yield* SlurmClient
    const ids = jobs.map((j) => j.jobId)
    yield* client.cancel(ids)
    // Until they are gone they may still write into staging directories this run is about to use.
    const stillThere = Effect.map(client.queue(ids), (rows) => rows.filter((r) => !terminalStates.has(r.state)).length)
    yield* stillThere.pipe(
      Effect.repeat({ schedule: Schedule.spaced(Duration.millis(500)), until: (n) => n === 0 }),
      Effect.timeout(Duration.seconds(60)),
      Effect.ignore
    )
    for (const job of jobs) {
      yield* records.update(job.executionId, job.jobId, {
        state: "CANCELLED",
        reason: "the run that submitted it was killed",
        endedAt: Date.now()
      })
    }
    reporter.info(`slurm: cancelled ${jobs.length} job(s) left behind by a run that was killed`)
  }).pipe(
    Effect.catchAll((error) =>
      Effect.flatMap(Reporter, (reporter) =>
        Effect.sync(() =>
          reporter.info(`slurm: could not cancel the jobs of a killed run: ${error.message}`)
        ))
    )
  )
