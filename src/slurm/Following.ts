/**
 * Following submitted jobs: one squeue call per poll for every job of the run, the events each job
 * appends to its file (progress, metrics, its result), and, once a job ends, the outcome of its
 * submission. A finished job is looked up with scontrol (which keeps it for MinJobAge), then sacct;
 * when accounting is disabled and the controller has forgotten the job, its events file is the last
 * word. A job Slurm requeues keeps its id and is followed on; its next attempt is named in the fence.
 */
import { Cause, Deferred, Duration, Effect, Either, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import { PersistedError, StageFailed, WorkerFailed } from "../domain/Errors.ts"
import { lostStates, requeuedStates, terminalStates } from "../domain/Slurm.ts"
import { readEvents } from "../executor/remote/Events.ts"
import { writeFence } from "../executor/remote/Fence.ts"
import type { EnvironmentRow } from "../lineage/Lineage.ts"
import { logTail } from "../worker/runWorker.ts"
import { flushCancels } from "./Cancel.ts"
import type { JobInfo } from "./Output.ts"
import { settingsForStage } from "./Settings.ts"
import type { SlurmRun, Tracked } from "./SlurmRun.ts"
import { updateJob, warnOnce } from "./SlurmRun.ts"

const runningStates = new Set(["RUNNING", "COMPLETING", "CONFIGURING", "SIGNALING", "STAGE_OUT", "RESIZING"])

const signalNames = new Map<number, string>(
  Object.entries(os.constants.signals).map(([name, number]) => [number, name])
)

const lastLines = (file: string, lines: number) => (fs.existsSync(file) ? logTail(file, lines) : [])

/** A failure a job reported, as the stage's own error where it decodes as one. */
export const decodeFailure = (stageId: string, error: unknown): StageFailed | WorkerFailed => {
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
const advanceAttempt = (run: SlurmRun, t: Tracked, attempt: number) =>
  Effect.suspend(() => {
    if (!t.attempts.advance(attempt)) return Effect.void
    t.result = undefined
    t.failure = undefined
    return Effect.try(() => writeFence(t.fencePath, { submission: t.submission, attempt })).pipe(
      Effect.catchAll((error) => warnOnce(run, `cannot write the fence ${t.fencePath}: ${String(error.error)}`))
    )
  })

/** Takes in what the job appended to its events file since the last look, of the attempt that stands. */
const drainEvents = (run: SlurmRun, t: Tracked) =>
  Effect.gen(function*() {
    const { ctx, executionId } = t.request
    const { events, malformed } = readEvents(t.eventsPath, t.cursor)
    const stale = new Map<number, number>()
    for (const event of events) {
      // A later attempt announcing itself (or reporting) takes the fence; an earlier one is stale.
      if (event.attempt > t.attempts.current()) yield* advanceAttempt(run, t, event.attempt)
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
            yield* updateJob(run, t, { restarts: t.restarts })
          }
          yield* run.records.placeExecution(executionId, event.host, undefined).pipe(Effect.orDie)
          break
        case "environment": {
          const env = event.environment as EnvironmentRow
          if (typeof env === "object" && env !== null && typeof env.id === "string") {
            yield* run.records.placeExecution(executionId, env.host, env).pipe(Effect.orDie)
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

/** The job ended: stop following it, record how, and decide its submission's outcome. */
const finish = (run: SlurmRun, t: Tracked, info: JobInfo) =>
  Effect.gen(function*() {
    yield* drainEvents(run, t)
    t.finished = true
    run.state.tracked.delete(t.jobId)
    const { ctx, stage } = t.request
    yield* updateJob(run, t, {
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
      const limit = info.timeLimit ?? settingsForStage(run.settings, stage.id).time ?? null
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

/** What the queue says of a job: its state recorded, a requeue noticed, an end finished. */
const observe = (run: SlurmRun, t: Tracked, info: JobInfo): Effect.Effect<void> =>
  Effect.gen(function*() {
    if (terminalStates.has(info.state)) {
      // scontrol has what squeue lacks: the exit code, restarts and times.
      const detail = info.exitCode === null
        ? yield* run.client.show(t.jobId).pipe(Effect.orElseSucceed(() => undefined))
        : undefined
      return yield* finish(run, t, detail && terminalStates.has(detail.state) ? detail : info)
    }
    if (runningStates.has(info.state) || info.state === "SUSPENDED" || info.state === "STOPPED") {
      if (!t.running) {
        t.running = true
        yield* updateJob(run, t, { state: info.state, reason: null, nodeList: info.nodeList, startedAt: Date.now() })
      } else if (info.state !== t.state) {
        yield* updateJob(run, t, { state: info.state })
      }
    } else if (t.running && (info.state === "PENDING" || requeuedStates.has(info.state))) {
      // It ran and is back in the queue: Slurm requeued it. Same job id; nothing to submit.
      t.running = false
      t.startedSinceRequeue = false
      const detail = yield* run.client.show(t.jobId).pipe(Effect.orElseSucceed(() => undefined))
      // The next attempt runs with SLURM_RESTART_COUNT as scontrol counts restarts: named in the
      // fence now, the attempt Slurm gave up on stops writing before the next one starts. Without
      // scontrol's count the next attempt's start event names it.
      if (detail?.restarts != null && detail.restarts > 0) yield* advanceAttempt(run, t, detail.restarts)
      t.restarts = Math.max(t.restarts + 1, detail?.restarts ?? 0)
      yield* updateJob(run, t, { state: info.state, reason: info.reason, restarts: t.restarts })
      const { stage } = t.request
      run.reporter.info(
        `  ${stage.id}: Slurm job ${t.jobId} was requeued (restart ${t.restarts}); ` +
          (stage.definition.resumable ? "it resumes from its latest checkpoint" : "it starts over")
      )
      yield* t.request.ctx.log(`[slurm] job ${t.jobId} requeued (restart ${t.restarts})`)
    } else if (info.state !== t.state) {
      yield* updateJob(run, t, { state: info.state, reason: info.reason })
    }
    t.state = info.state
  })

/** Not in the queue: ask the controller, then accounting; failing both, the events file decides. */
const vanished = (run: SlurmRun, t: Tracked) =>
  Effect.gen(function*() {
    const shown = yield* run.client.show(t.jobId).pipe(Effect.orElseSucceed(() => undefined))
    if (shown) return yield* observe(run, t, shown)
    const accounted = yield* run.client.accounting([t.jobId]).pipe(
      Effect.orElseSucceed(() => "disabled" as const)
    )
    const row = accounted === "disabled" ? undefined : accounted.find((j) => j.jobId === t.jobId)
    if (row && terminalStates.has(row.state)) return yield* finish(run, t, row)
    // A job submitted a moment ago may not be visible yet.
    if (++t.unseenPolls < 3) return
    yield* finish(run, t, {
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

/** One poll: pending cancellations sent, then every unfinished job looked at once. */
const pollOnce = (run: SlurmRun) =>
  Effect.gen(function*() {
    yield* flushCancels(run)
    const active = [...run.state.tracked.values()].filter((t) => !t.finished)
    if (active.length === 0) return
    const rows = yield* run.client.queue(active.map((t) => t.jobId))
    const byId = new Map(rows.map((row) => [row.jobId, row]))
    for (const t of active) {
      yield* drainEvents(run, t)
      const row = byId.get(t.jobId)
      yield* row ? observe(run, t, row) : vanished(run, t)
    }
  })

/** The fiber body that polls every `poll` seconds; a failed poll is reported once and retried at the next. */
export const poller = (run: SlurmRun): Effect.Effect<never> =>
  Effect.forever(
    Effect.zipRight(
      Effect.sleep(Duration.seconds(run.settings.poll)),
      pollOnce(run).pipe(
        Effect.catchAllCause((cause) =>
          warnOnce(run, `following jobs: ${Cause.isFailType(cause) ? cause.error.message : Cause.pretty(cause)}`)
        )
      )
    )
  )
