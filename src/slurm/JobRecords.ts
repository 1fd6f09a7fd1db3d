/**
 * The Slurm jobs behind executions, as lineage records them (src/lineage/slurmJobs.ts). Only the engine
 * calls it; compute nodes report through their events files.
 */
import { Effect } from "effect"
import type { SlurmJobRow } from "../lineage/Lineage.ts"
import { Lineage } from "../lineage/Lineage.ts"

export type { NewSlurmJob, SlurmJobRow, SlurmJobUpdate } from "../lineage/Lineage.ts"

export const makeJobRecords = (lineage: Lineage) => lineage.slurmJobs

export type JobRecords = ReturnType<typeof makeJobRecords>

export const jobRecords = Effect.map(Lineage, makeJobRecords)

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
