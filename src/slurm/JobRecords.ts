/**
 * The Slurm jobs behind executions, in the lineage database: a small adapter over the engine's
 * connection. Only the engine calls it; compute nodes report through their events files.
 */
import { and, eq, inArray, notInArray } from "drizzle-orm"
import { Effect } from "effect"
import { LineageError } from "../domain/Errors.ts"
import { terminalStates } from "../domain/Slurm.ts"
import type { Db, EnvironmentRow } from "../lineage/Lineage.ts"
import { Lineage } from "../lineage/Lineage.ts"
import * as schema from "../lineage/schema.ts"

export type SlurmJobRow = typeof schema.slurmJobs.$inferSelect
export type NewSlurmJob = typeof schema.slurmJobs.$inferInsert
export type SlurmJobUpdate = Partial<Omit<SlurmJobRow, "executionId" | "jobId" | "submission" | "script">>

const attempt = <A>(reason: string, f: () => A): Effect.Effect<A, LineageError> =>
  Effect.try({
    try: f,
    catch: (cause) =>
      new LineageError({ reason: `${reason}: ${cause instanceof Error ? cause.message : String(cause)}`, cause })
  })

export const makeJobRecords = (db: Db) => {
  const write = <A>(reason: string, f: (tx: Db) => A) =>
    attempt(reason, () => db.transaction((tx) => f(tx as unknown as Db), { behavior: "immediate" }))
  return {
    record: (row: NewSlurmJob) => write("recording a Slurm job", (tx) => tx.insert(schema.slurmJobs).values(row).run()),

    update: (executionId: string, jobId: string, fields: SlurmJobUpdate) =>
      write("updating a Slurm job", (tx) =>
        tx.update(schema.slurmJobs).set(fields).where(
          and(eq(schema.slurmJobs.executionId, executionId), eq(schema.slurmJobs.jobId, jobId))
        ).run()),

    ofExecution: (executionId: string) =>
      attempt(
        "looking up Slurm jobs",
        () =>
          db.select().from(schema.slurmJobs).where(eq(schema.slurmJobs.executionId, executionId))
            .orderBy(schema.slurmJobs.submission).all()
      ),

    /** Jobs of these executions that may still be queued or running. */
    unfinished: (executionIds: ReadonlyArray<string>) =>
      executionIds.length === 0 ?
        Effect.succeed([]) :
        attempt("looking up Slurm jobs", () =>
          db.select().from(schema.slurmJobs).where(
            and(
              inArray(schema.slurmJobs.executionId, [...executionIds]),
              notInArray(schema.slurmJobs.state, [...terminalStates])
            )
          ).all()),

    /** Where the job actually ran: the batch host and its environment, reported by the job itself. */
    placeExecution: (executionId: string, host: string, environment: EnvironmentRow | undefined) =>
      write("recording where an execution ran", (tx) => {
        if (environment) tx.insert(schema.environments).values(environment).onConflictDoNothing().run()
        tx.update(schema.executions).set({ host, ...(environment ? { environmentId: environment.id } : {}) })
          .where(eq(schema.executions.id, executionId)).run()
      })
  }
}

export type JobRecords = ReturnType<typeof makeJobRecords>

export const jobRecords = Effect.map(Lineage, (lineage) => makeJobRecords(lineage.db))

/** Lines for `show`: one per job, with its state, nodes, exit code and requeues. */
export const describeJobs = (jobs: ReadonlyArray<SlurmJobRow>): ReadonlyArray<string> =>
  jobs.length === 0 ? [] : [
    "  slurm jobs",
    ...jobs.map((job) =>
      `    ${job.jobId} ${job.state}` +
      (job.nodeList ? ` on ${job.nodeList}` : "") +
      (job.exitCode === null ? "" : ` exit ${job.exitCode}${job.signal ? `:${job.signal}` : ""}`) +
      (job.restarts > 0 ? `, requeued ${job.restarts}x` : "") +
      (job.submission > 1 ? ` (resubmission ${job.submission - 1})` : "") +
      (job.reason ? ` [${job.reason}]` : "")
    )
  ]
