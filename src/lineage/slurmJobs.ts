/**
 * The Slurm jobs behind executions run by the Slurm executor. Only the engine writes them; compute
 * nodes report through their events files, never through this database.
 */
import { and, eq, inArray, notInArray } from "drizzle-orm"
import { Effect } from "effect"
import { terminalStates } from "../domain/Slurm.ts"
import type { Connection } from "./database.ts"
import type { EnvironmentRow, NewSlurmJob, SlurmJobUpdate } from "./rows.ts"
import * as schema from "./schema.ts"

export const slurmJobQueries = ({ read, write }: Connection) => ({
  record: (row: NewSlurmJob) => write("recording a Slurm job", (tx) => tx.insert(schema.slurmJobs).values(row).run()),

  update: (executionId: string, jobId: string, fields: SlurmJobUpdate) =>
    write("updating a Slurm job", (tx) =>
      tx.update(schema.slurmJobs).set(fields).where(
        and(eq(schema.slurmJobs.executionId, executionId), eq(schema.slurmJobs.jobId, jobId))
      ).run()),

  ofExecution: (executionId: string) =>
    read(
      "looking up Slurm jobs",
      (db) =>
        db.select().from(schema.slurmJobs).where(eq(schema.slurmJobs.executionId, executionId))
          .orderBy(schema.slurmJobs.submission).all()
    ),

  /** Jobs of these executions that may still be queued or running. */
  unfinished: (executionIds: ReadonlyArray<string>) =>
    executionIds.length === 0 ?
      Effect.succeed([]) :
      read("looking up Slurm jobs", (db) =>
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
})
