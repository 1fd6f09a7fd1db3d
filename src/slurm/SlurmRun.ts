/**
 * What the parts of the Slurm executor (Submission, Following, Cancel, Resubmission) share for one
 * run: the services they call, and the little mutable state that passes between them, in one object
 * made when the executor is built.
 */
import type { Deferred } from "effect"
import { Effect, Queue } from "effect"
import * as path from "node:path"
import type { StageFailed, WorkerFailed } from "../domain/Errors.ts"
import type { SlurmSettings } from "../domain/Slurm.ts"
import type { ReporterShape } from "../engine/Reporter.ts"
import { Reporter } from "../engine/Reporter.ts"
import type { ExecutionRequest } from "../executor/Executor.ts"
import type { AttemptFilter, EventsCursor } from "../executor/remote/Events.ts"
import { Lineage } from "../lineage/Lineage.ts"
import { Workspace } from "../workspace/Workspace.ts"
import type { JobRecords } from "./JobRecords.ts"
import { makeJobRecords } from "./JobRecords.ts"
import { SlurmClient } from "./SlurmClient.ts"

/** How the run was invoked: what a job needs to resolve the same pipeline on its node. */
export interface SlurmInvocation {
  /** A pipeline name, or the absolute path of a pipeline module. */
  readonly pipeline: string
  readonly preset: string
  readonly overrides: ReadonlyArray<string>
  readonly config: Readonly<Record<string, string>>
  readonly settings: SlurmSettings
  /** GPUs per node, as stages settle against them. */
  readonly gpusPerNode: number
  /** What a batch job runs, up to `--spec`: node, the CLI (or a bundle of it), `job`, the pipeline. */
  readonly jobCommand: ReadonlyArray<string>
}

/** How one submission of an execution ended, as following decides it. */
export type Outcome =
  | { readonly _tag: "Succeeded"; readonly value: unknown }
  | { readonly _tag: "Failed"; readonly error: StageFailed | WorkerFailed }
  | { readonly _tag: "Lost"; readonly jobId: string; readonly state: string; readonly error: WorkerFailed }
  /** Slurm stopped the job at its time limit; `limit` as Slurm gave it, or the settings', if known. */
  | { readonly _tag: "TimedOut"; readonly jobId: string; readonly limit: string | null; readonly error: WorkerFailed }

/** A submitted job (one task of an array counts as one), followed until it finishes. */
export interface Tracked {
  readonly request: ExecutionRequest
  readonly jobId: string
  readonly submission: number
  readonly eventsPath: string
  readonly fencePath: string
  readonly slurmOutput: string
  readonly cursor: EventsCursor
  /** The attempt (Slurm's restart count) whose events stand; the fence file names the same one. */
  readonly attempts: AttemptFilter
  state: string
  running: boolean
  /** Whether the stage started (a `start` event) since Slurm last requeued the job. */
  startedSinceRequeue: boolean
  restarts: number
  result: { readonly value: unknown } | undefined
  failure: unknown
  cancelling: boolean
  finished: boolean
  unseenPolls: number
  readonly done: Deferred.Deferred<Outcome>
}

/** A submission of an execution, waiting for the submitter. */
export interface Pending {
  readonly request: ExecutionRequest
  readonly submission: number
  /** Events files of the execution's earlier submissions. */
  readonly earlierEvents: ReadonlyArray<string>
  cancelled: boolean
  /** Set by the submitter before `tracked` completes, so an interruption at any point finds the job. */
  current: Tracked | undefined
  readonly tracked: Deferred.Deferred<Tracked, StageFailed>
}

/** The state the parts share; everything else they keep is local to one call. */
export interface RunState {
  /** The jobs being followed, by job id; a job leaves when it finishes. */
  readonly tracked: Map<string, Tracked>
  /** Submissions the submitter has yet to take. */
  readonly pending: Queue.Queue<Pending>
  /** Jobs to scancel at the next flush: cancelled together, they go in one call. */
  readonly cancelRequests: Set<string>
  /** Warnings already given: each is given once per run. */
  readonly warned: Set<string>
}

export interface SlurmRun {
  readonly invocation: SlurmInvocation
  readonly settings: SlurmSettings
  readonly client: SlurmClient
  readonly records: JobRecords
  readonly reporter: ReporterShape
  /** The workspace root; scripts are recorded relative to it. */
  readonly root: string
  /** Where batch scripts, job specs, events files and fences go. */
  readonly jobsDir: string
  readonly state: RunState
}

export const makeSlurmRun = (invocation: SlurmInvocation) =>
  Effect.gen(function*() {
    const client = yield* SlurmClient
    const records = makeJobRecords(yield* Lineage)
    const ws = yield* Workspace
    const reporter = yield* Reporter
    const state: RunState = {
      tracked: new Map(),
      pending: yield* Queue.unbounded<Pending>(),
      cancelRequests: new Set(),
      warned: new Set()
    }
    return {
      invocation,
      settings: invocation.settings,
      client,
      records,
      reporter,
      root: ws.root,
      jobsDir: path.join(ws.root, "slurm"),
      state
    } satisfies SlurmRun
  })

/** One fence per execution, shared by its submissions: a resubmission fences the jobs before it. */
export const fenceOf = (run: SlurmRun, executionId: string) => path.join(run.jobsDir, "fences", `${executionId}.json`)

/** Tells the user once per run; a poll that keeps failing the same way does not repeat itself. */
export const warnOnce = (run: SlurmRun, message: string) =>
  Effect.sync(() => {
    if (run.state.warned.has(message)) return
    run.state.warned.add(message)
    run.reporter.info(`slurm: ${message}`)
  })

/** Records what became of a job in lineage. */
export const updateJob = (run: SlurmRun, t: Tracked, fields: Parameters<JobRecords["update"]>[2]) =>
  run.records.update(t.request.executionId, t.jobId, fields).pipe(Effect.orDie)
