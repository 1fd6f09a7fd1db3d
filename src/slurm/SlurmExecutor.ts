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
import { Cause, Deferred, Duration, Effect, Either, FiberId, Layer, Queue, RateLimiter, Schema } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { PersistedError, StageFailed, WorkerFailed } from "../domain/Errors.ts"
import type { SlurmSettings } from "../domain/Slurm.ts"
import { lostStates, requeuedStates, terminalStates } from "../domain/Slurm.ts"
import { canonicalJson } from "../engine/Fingerprint.ts"
import { Reporter } from "../engine/Reporter.ts"
import type { ExecutionRequest, Recoverer } from "../executor/Executor.ts"
import { Executor } from "../executor/Executor.ts"
import type { AttemptFilter, EventsCursor } from "../executor/remote/Events.ts"
import { attemptFilter, newCursor, readEvents } from "../executor/remote/Events.ts"
import { writeFence } from "../executor/remote/Fence.ts"
import type { JobSpec } from "../executor/remote/Protocol.ts"
import { newestCheckpoint } from "../executor/remote/Resume.ts"
import type { EnvironmentRow } from "../lineage/Lineage.ts"
import { Lineage } from "../lineage/Lineage.ts"
import { logTail } from "../worker/runWorker.ts"
import { Workspace } from "../workspace/Workspace.ts"
import { makeJobRecords } from "./JobRecords.ts"
import type { BatchJob } from "./JobScript.ts"
import { batchScript, sbatchArguments } from "./JobScript.ts"
import { cancelOrphanedJobs } from "./Orphans.ts"
import type { JobInfo } from "./Output.ts"
import { settingsForStage } from "./Settings.ts"
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

type Outcome =
  | { readonly _tag: "Succeeded"; readonly value: unknown }
  | { readonly _tag: "Failed"; readonly error: StageFailed | WorkerFailed }
  | { readonly _tag: "Lost"; readonly jobId: string; readonly state: string; readonly error: WorkerFailed }
  /** Slurm stopped the job at its time limit; `limit` as Slurm gave it, or the settings', if known. */
  | { readonly _tag: "TimedOut"; readonly jobId: string; readonly limit: string | null; readonly error: WorkerFailed }

interface Tracked {
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

interface Pending {
  readonly request: ExecutionRequest
  readonly submission: number
  /** Events files of the execution's earlier submissions. */
  readonly earlierEvents: ReadonlyArray<string>
  cancelled: boolean
  /** Set by the submitter before `tracked` completes, so an interruption at any point finds the job. */
  current: Tracked | undefined
  readonly tracked: Deferred.Deferred<Tracked, StageFailed>
}

const runningStates = new Set(["RUNNING", "COMPLETING", "CONFIGURING", "SIGNALING", "STAGE_OUT", "RESIZING"])

/** Stages made ready by the same upstream arrive within this window and can share a job array. */
const COALESCE = Duration.millis(50)

const signalNames = new Map<number, string>(
  Object.entries(os.constants.signals).map(([name, number]) => [number, name])
)

const lastLines = (file: string, lines: number) => (fs.existsSync(file) ? logTail(file, lines) : [])

const make = (invocation: SlurmInvocation) =>
  Effect.gen(function*() {
    const client = yield* SlurmClient
    const lineage = yield* Lineage
    const records = makeJobRecords(lineage)
    const ws = yield* Workspace
    const reporter = yield* Reporter
    const settings = invocation.settings
    const command = invocation.jobCommand
    const jobsDir = path.join(ws.root, "slurm")
    /** One fence per execution, shared by its submissions: a resubmission fences the jobs before it. */
    const fenceOf = (executionId: string) => path.join(jobsDir, "fences", `${executionId}.json`)

    const tracked = new Map<string, Tracked>()
    const pendingQueue = yield* Queue.unbounded<Pending>()
    const cancelRequests = new Set<string>()
    const limiter = yield* RateLimiter.make({
      limit: settings.submitBurst,
      interval: Duration.millis((1000 * settings.submitBurst) / settings.submitRate),
      algorithm: "token-bucket"
    })
    const warned = new Set<string>()
    const warnOnce = (message: string) =>
      Effect.sync(() => {
        if (warned.has(message)) return
        warned.add(message)
        reporter.info(`slurm: ${message}`)
      })
    const update = (t: Tracked, fields: Parameters<typeof records.update>[2]) =>
      records.update(t.request.executionId, t.jobId, fields).pipe(Effect.orDie)

    // ---- submission -------------------------------------------------------------------------------

    const specOf = (pending: Pending, eventsPath: string): JobSpec => {
      const { ctx, executionId, stage } = pending.request
      return {
        version: 1,
        executionId,
        stageId: stage.id,
        pipeline: {
          ref: invocation.pipeline,
          preset: invocation.preset,
          overrides: [...invocation.overrides],
          config: { ...invocation.config },
          gpus: invocation.gpusPerNode
        },
        params: canonicalJson(stage.encodedParams),
        inputs: { ...ctx.inputs },
        workDir: ctx.workDir,
        logPath: ctx.logPath,
        eventsPath,
        resumable: stage.definition.resumable === true,
        submission: pending.submission,
        cpus: Math.max(1, stage.resources.cpus),
        fencePath: fenceOf(executionId),
        earlierEvents: [...pending.earlierEvents]
      }
    }

    /** Stages that may share an array: same kind, resources and Slurm settings. */
    const groupKey = (pending: Pending): string => {
      const stage = pending.request.stage
      const stageSettings = settingsForStage(settings, stage.id)
      if (!stageSettings.array) return `single:${pending.request.executionId}`
      return canonicalJson({ kind: stage.definition.kind, resources: stage.resources, settings: stageSettings })
    }

    const submitGroup = (group: ReadonlyArray<Pending>) =>
      Effect.gen(function*() {
        const first = group[0]!.request.stage
        const dir = path.join(jobsDir, `${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 8)}`)
        const isArray = group.length > 1
        const eventsPaths = group.map((_, i) => path.join(dir, `task-${i}.events.jsonl`))
        const job: BatchJob = {
          name: isArray ? `flame-pipe:${first.definition.kind}` : `flame-pipe:${first.id}`,
          resources: first.resources,
          settings: settingsForStage(settings, first.id),
          tasks: group.map((p, i) => ({ specPath: path.join(dir, `task-${i}.json`), logPath: p.request.ctx.logPath })),
          slurmOutput: path.join(dir, isArray ? "slurm-%A_%a.out" : "slurm-%j.out"),
          chdir: process.cwd(),
          requeue: true,
          command
        }
        const script = path.join(dir, "job.sh")
        const written = yield* Effect.try({
          try: () => {
            fs.mkdirSync(dir, { recursive: true })
            group.forEach((p, i) => {
              fs.writeFileSync(job.tasks[i]!.specPath, JSON.stringify(specOf(p, eventsPaths[i]!), null, 2) + "\n")
              fs.writeFileSync(eventsPaths[i]!, "")
              // Named before the job exists: from now on, the execution's earlier jobs may not write.
              writeFence(fenceOf(p.request.executionId), { submission: p.submission, attempt: 0 })
            })
            fs.writeFileSync(script, batchScript(job), { mode: 0o755 })
          },
          catch: (cause) => cause instanceof Error ? cause.message : String(cause)
        }).pipe(Effect.either)
        const flags = sbatchArguments(job)
        const submitted = Either.isLeft(written) ?
          Either.left(`cannot write the batch script in ${dir}: ${written.left}`) :
          Either.mapLeft(
            yield* Effect.either(client.submit(script, flags)),
            (error) => `sbatch refused the job: ${error.message}`
          )
        if (Either.isLeft(submitted)) {
          for (const p of group) {
            yield* Deferred.fail(p.tracked, new StageFailed({ stage: p.request.stage.id, reason: submitted.left }))
          }
          return
        }
        const arrayId = submitted.right
        const submittedAt = Date.now()
        for (const [i, p] of group.entries()) {
          const jobId = isArray ? `${arrayId}_${i}` : arrayId
          const t: Tracked = {
            request: p.request,
            jobId,
            submission: p.submission,
            eventsPath: eventsPaths[i]!,
            fencePath: fenceOf(p.request.executionId),
            slurmOutput: job.slurmOutput.replace("%A", arrayId).replace("%a", String(i)).replace("%j", arrayId),
            cursor: newCursor(),
            attempts: attemptFilter(),
            state: "PENDING",
            running: false,
            startedSinceRequeue: false,
            restarts: 0,
            result: undefined,
            failure: undefined,
            cancelling: false,
            finished: false,
            unseenPolls: 0,
            done: yield* Deferred.make<Outcome>()
          }
          tracked.set(jobId, t)
          p.current = t
          yield* records.record({
            executionId: p.request.executionId,
            jobId,
            submission: p.submission,
            script: path.relative(ws.root, script),
            partition: job.settings.partition ?? null,
            state: "PENDING",
            submittedAt
          }).pipe(Effect.orDie)
          yield* p.request.ctx.log(
            `[slurm] submitted as job ${jobId} (${path.relative(ws.root, script)}${
              flags.length > 0 ? `, sbatch flags ${JSON.stringify(flags)}` : ""
            })`
          )
          // Interrupted while sbatch was under way: the job must not outlive the run.
          if (p.cancelled) {
            yield* requestCancel(t)
          }
          yield* Deferred.succeed(p.tracked, t)
        }
      })

    const submitter = Effect.forever(
      Effect.gen(function*() {
        const first = yield* Queue.take(pendingQueue)
        yield* Effect.sleep(COALESCE)
        const batch = [first, ...(yield* Queue.takeAll(pendingQueue))].filter((p) => !p.cancelled)
        const groups = new Map<string, Array<Pending>>()
        for (const p of batch) {
          const key = groupKey(p)
          const group = groups.get(key)
          if (group && group.length < settings.arrayMax) group.push(p)
          else groups.set(group ? `${key}#${crypto.randomUUID()}` : key, [p])
        }
        for (const group of groups.values()) {
          // Whatever goes wrong with one submission fails its stages, never the submitter.
          yield* limiter(submitGroup(group)).pipe(
            Effect.catchAllCause((cause) =>
              Effect.forEach(group, (p) =>
                p.current ? Effect.void : Deferred.fail(
                  p.tracked,
                  new StageFailed({ stage: p.request.stage.id, reason: `submission failed: ${Cause.pretty(cause)}` })
                ), { discard: true })
            )
          )
        }
      })
    )

    // ---- following --------------------------------------------------------------------------------

    const decodeFailure = (stageId: string, error: unknown): StageFailed | WorkerFailed => {
      const decoded = Schema.decodeUnknownEither(PersistedError)(error)
      if (Either.isRight(decoded) && decoded.right._tag !== "MissingOutput") return decoded.right
      const message = typeof error === "object" && error !== null && "message" in error ?
        String((error as { message: unknown }).message) :
        JSON.stringify(error)
      return new StageFailed({ stage: stageId, reason: message })
    }

    /**
     * Names a later attempt of the job in the execution's fence: the attempt before it may no longer
     * write, and what it reported no longer stands.
     */
    const advanceAttempt = (t: Tracked, attempt: number) =>
      Effect.suspend(() => {
        if (!t.attempts.advance(attempt)) return Effect.void
        t.result = undefined
        t.failure = undefined
        return Effect.try(() => writeFence(t.fencePath, { submission: t.submission, attempt })).pipe(
          Effect.catchAll((error) => warnOnce(`cannot write the fence ${t.fencePath}: ${String(error.error)}`))
        )
      })

    const drainEvents = (t: Tracked) =>
      Effect.gen(function*() {
        const { ctx, executionId } = t.request
        const { events, malformed } = readEvents(t.eventsPath, t.cursor)
        const stale = new Map<number, number>()
        for (const event of events) {
          // A later attempt announcing itself (or reporting) takes the fence; an earlier one is stale.
          if (event.attempt > t.attempts.current()) yield* advanceAttempt(t, event.attempt)
          if (!t.attempts.accepts(event)) {
            stale.set(event.attempt, (stale.get(event.attempt) ?? 0) + 1)
            continue
          }
          switch (event.t) {
            case "start":
              // A new attempt: what an earlier one reported no longer stands.
              t.result = undefined
              t.failure = undefined
              t.startedSinceRequeue = true
              if (event.attempt > t.restarts) {
                t.restarts = event.attempt
                yield* update(t, { restarts: t.restarts })
              }
              yield* records.placeExecution(executionId, event.host, undefined).pipe(Effect.orDie)
              break
            case "environment": {
              const env = event.environment as EnvironmentRow
              if (typeof env === "object" && env !== null && typeof env.id === "string") {
                yield* records.placeExecution(executionId, env.host, env).pipe(Effect.orDie)
              }
              break
            }
            case "progress":
              yield* ctx.progress(event.step, event.total)
              break
            case "metric":
              yield* ctx.metric(event.name, event.step, event.value)
              break
            case "result":
              t.result = { value: event.value }
              break
            case "failed":
              t.failure = event.error
              break
            case "interrupted":
              break
          }
        }
        for (const line of malformed) yield* ctx.log(`[engine] malformed event from job ${t.jobId}: ${line}`)
        for (const [attempt, count] of stale) {
          yield* ctx.log(
            `[engine] ignored ${count} event(s) of attempt ${attempt} of job ${t.jobId}: attempt ${t.attempts.current()} has replaced it`
          )
        }
      })

    const finish = (t: Tracked, info: JobInfo) =>
      Effect.gen(function*() {
        yield* drainEvents(t)
        t.finished = true
        tracked.delete(t.jobId)
        const { ctx, stage } = t.request
        yield* update(t, {
          state: info.state,
          reason: info.reason,
          ...(info.nodeList ? { nodeList: info.nodeList } : {}),
          exitCode: info.exitCode,
          signal: info.signal,
          restarts: Math.max(t.restarts, info.restarts ?? 0),
          ...(info.startedAt ? { startedAt: info.startedAt } : {}),
          endedAt: info.endedAt ?? Date.now()
        })
        const completed = info.state === "COMPLETED" || (info.state === "UNKNOWN" && info.exitCode === null)
        if (t.result !== undefined && completed) {
          return yield* Deferred.succeed(t.done, { _tag: "Succeeded", value: t.result.value })
        }
        if (info.state === "TIMEOUT" && !t.cancelling) {
          // Whatever the stage reported on its way down (its workers killed by Slurm's signal), the
          // time limit is what ended it.
          const limit = info.timeLimit ?? settingsForStage(settings, stage.id).time ?? null
          return yield* Deferred.succeed(t.done, {
            _tag: "TimedOut",
            jobId: t.jobId,
            limit,
            error: new WorkerFailed({
              stage: stage.id,
              reason: `Slurm job ${t.jobId} ran out of time: it reached its time limit (${
                limit ?? "the partition's default"
              }) and Slurm stopped it; raise the limit with slurm.time or slurm.stage.<glob>.time`,
              exitCode: info.exitCode,
              signal: info.signal ? signalNames.get(info.signal) ?? String(info.signal) : null,
              logPath: ctx.logPath,
              logTail: [...lastLines(ctx.logPath, 20), ...lastLines(t.slurmOutput, 5)]
            })
          })
        }
        if (t.failure !== undefined && !lostStates.has(info.state)) {
          return yield* Deferred.succeed(t.done, { _tag: "Failed", error: decodeFailure(stage.id, t.failure) })
        }
        // A requeued job that failed before its stage started again did not fail the stage: the node
        // refused to relaunch it (e.g. while the killed attempt was still being cleaned up).
        const lost = lostStates.has(info.state) ||
          (t.restarts > 0 && !t.startedSinceRequeue && !t.cancelling && info.state === "FAILED")
        const slurmLines = lastLines(t.slurmOutput, 5)
        const how = info.state === "UNKNOWN" ?
          "is no longer known to Slurm (and sacct is not available) and reported no result" :
          `ended ${info.state}${info.reason ? ` (${info.reason})` : ""}` +
          (info.state === "COMPLETED" ? " without reporting a result" : "")
        const error = new WorkerFailed({
          stage: stage.id,
          reason: `Slurm job ${t.jobId} ${how}`,
          exitCode: info.exitCode,
          signal: info.signal ? signalNames.get(info.signal) ?? String(info.signal) : null,
          logPath: ctx.logPath,
          logTail: [...lastLines(ctx.logPath, 20), ...slurmLines]
        })
        yield* Deferred.succeed(
          t.done,
          lost ? { _tag: "Lost", jobId: t.jobId, state: info.state, error } : { _tag: "Failed", error }
        )
      })

    const observe = (t: Tracked, info: JobInfo): Effect.Effect<void> =>
      Effect.gen(function*() {
        if (terminalStates.has(info.state)) {
          // scontrol has what squeue lacks: the exit code, restarts and times.
          const detail = info.exitCode === null
            ? yield* client.show(t.jobId).pipe(Effect.orElseSucceed(() => undefined))
            : undefined
          return yield* finish(t, detail && terminalStates.has(detail.state) ? detail : info)
        }
        if (runningStates.has(info.state) || info.state === "SUSPENDED" || info.state === "STOPPED") {
          if (!t.running) {
            t.running = true
            yield* update(t, { state: info.state, reason: null, nodeList: info.nodeList, startedAt: Date.now() })
          } else if (info.state !== t.state) {
            yield* update(t, { state: info.state })
          }
        } else if (t.running && (info.state === "PENDING" || requeuedStates.has(info.state))) {
          // It ran and is back in the queue: Slurm requeued it. Same job id; nothing to submit.
          t.running = false
          t.startedSinceRequeue = false
          const detail = yield* client.show(t.jobId).pipe(Effect.orElseSucceed(() => undefined))
          // The next attempt runs with SLURM_RESTART_COUNT as scontrol counts restarts: named in the
          // fence now, the attempt Slurm gave up on stops writing before the next one starts. Without
          // scontrol's count the next attempt's start event names it.
          if (detail?.restarts != null && detail.restarts > 0) yield* advanceAttempt(t, detail.restarts)
          t.restarts = Math.max(t.restarts + 1, detail?.restarts ?? 0)
          yield* update(t, { state: info.state, reason: info.reason, restarts: t.restarts })
          const { stage } = t.request
          reporter.info(
            `  ${stage.id}: Slurm job ${t.jobId} was requeued (restart ${t.restarts}); ` +
              (stage.definition.resumable ? "it resumes from its latest checkpoint" : "it starts over")
          )
          yield* t.request.ctx.log(`[slurm] job ${t.jobId} requeued (restart ${t.restarts})`)
        } else if (info.state !== t.state) {
          yield* update(t, { state: info.state, reason: info.reason })
        }
        t.state = info.state
      })

    /** Not in the queue: ask the controller, then accounting; failing both, the events file decides. */
    const vanished = (t: Tracked) =>
      Effect.gen(function*() {
        const shown = yield* client.show(t.jobId).pipe(Effect.orElseSucceed(() => undefined))
        if (shown) return yield* observe(t, shown)
        const accounted = yield* client.accounting([t.jobId]).pipe(Effect.orElseSucceed(() => "disabled" as const))
        const row = accounted === "disabled" ? undefined : accounted.find((j) => j.jobId === t.jobId)
        if (row && terminalStates.has(row.state)) return yield* finish(t, row)
        // A job submitted a moment ago may not be visible yet.
        if (++t.unseenPolls < 3) return
        yield* finish(t, {
          jobId: t.jobId,
          state: "UNKNOWN",
          reason: null,
          nodeList: null,
          exitCode: null,
          signal: null,
          restarts: null,
          startedAt: null,
          endedAt: null,
          timeLimit: null
        })
      })

    const flushCancels = Effect.suspend(() => {
      if (cancelRequests.size === 0) return Effect.void
      const ids = [...cancelRequests]
      cancelRequests.clear()
      return client.cancel(ids).pipe(Effect.catchAll((error) => warnOnce(error.message)))
    })

    const pollOnce = Effect.gen(function*() {
      yield* flushCancels
      const active = [...tracked.values()].filter((t) => !t.finished)
      if (active.length === 0) return
      const rows = yield* client.queue(active.map((t) => t.jobId))
      const byId = new Map(rows.map((row) => [row.jobId, row]))
      for (const t of active) {
        yield* drainEvents(t)
        const row = byId.get(t.jobId)
        yield* row ? observe(t, row) : vanished(t)
      }
    })

    const poller = Effect.forever(
      Effect.zipRight(
        Effect.sleep(Duration.seconds(settings.poll)),
        pollOnce.pipe(
          Effect.catchAllCause((cause) =>
            warnOnce(`following jobs: ${Cause.isFailType(cause) ? cause.error.message : Cause.pretty(cause)}`)
          )
        )
      )
    )

    const requestCancel = (t: Tracked) =>
      Effect.sync(() => {
        t.cancelling = true
        cancelRequests.add(t.jobId)
      })

    /** Cancels a job and waits (up to cancelTimeout) until Slurm reports it ended. */
    const cancelAndWait = (t: Tracked) =>
      Effect.gen(function*() {
        if (t.finished) return
        yield* requestCancel(t)
        // Siblings interrupted by the same Ctrl-C join this scancel.
        yield* Effect.sleep(Duration.millis(20))
        yield* flushCancels
        const ended = yield* Deferred.await(t.done).pipe(
          Effect.timeout(Duration.seconds(settings.cancelTimeout)),
          Effect.option
        )
        if (ended._tag === "None") {
          yield* update(t, { state: "CANCELLING", reason: "still running when the run gave up waiting" })
          reporter.info(
            `slurm: job ${t.jobId} (${t.request.stage.id}) was cancelled but had not ended after ${settings.cancelTimeout}s`
          )
        }
      })

    yield* Effect.forkScoped(submitter)
    yield* Effect.forkScoped(poller)

    /** One submission of an execution; its outcome, and the events file its job wrote. */
    const attemptOnce = (request: ExecutionRequest, submission: number, earlierEvents: ReadonlyArray<string>) =>
      Effect.suspend(() => {
        const pending: Pending = {
          request,
          submission,
          earlierEvents,
          cancelled: false,
          current: undefined,
          tracked: Deferred.unsafeMake<Tracked, StageFailed>(FiberId.none)
        }
        return Queue.offer(pendingQueue, pending).pipe(
          Effect.zipRight(Deferred.await(pending.tracked)),
          Effect.flatMap((t) =>
            Effect.map(Deferred.await(t.done), (outcome) => ({ outcome, eventsPath: t.eventsPath }))
          ),
          Effect.onInterrupt(() =>
            Effect.suspend(() => {
              pending.cancelled = true
              return pending.current ? cancelAndWait(pending.current) : Effect.void
            })
          )
        )
      })

    const execute = (request: ExecutionRequest) =>
      Effect.gen(function*() {
        const { ctx, stage } = request
        const earlierEvents: Array<string> = []
        /** The checkpoint the latest submission resumed from: a job that timed out without a newer one got nowhere. */
        let resumedFrom = stage.definition.resumable
          ? newestCheckpoint(ctx.workDir, Object.keys(stage.outputs))
          : undefined
        for (let submission = 1;; submission++) {
          const { eventsPath, outcome } = yield* attemptOnce(request, submission, earlierEvents)
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

    return Executor.of({
      name: "slurm",
      info: { gpus: invocation.gpusPerNode },
      localSlots: false,
      recoverer: yield* slurmRecoverer,
      execute
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
