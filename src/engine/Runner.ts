/**
 * `run`: the local executor. Stages start as soon as their upstreams are done, up to `--jobs` at once
 * and within the CPU and GPU slots; each stage is re-checked against the cache with its upstreams'
 * actual output hashes, so an upstream that reran and produced identical outputs leaves its
 * downstream cached (early cutoff).
 */
import { Cause, Data, Deferred, Effect, Exit, FiberId, Option, Schema } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { MissingOutput, PersistedError, StageFailed } from "../domain/Errors.ts"
import { describeReason } from "../domain/Plan.ts"
import type { RunSummary, StageOutcome, StageStatus } from "../domain/Run.ts"
import { Executor } from "../executor/Executor.ts"
import type { MetricRow, NewArtifact } from "../lineage/Lineage.ts"
import { Lineage } from "../lineage/Lineage.ts"
import type { ResolvedPipeline, ResolvedStage } from "../Pipeline.ts"
import type { StageContext } from "../Stage.ts"
import { ArtifactStore } from "../store/ArtifactStore.ts"
import { ContentHasher } from "../store/ContentHasher.ts"
import { stopAbandonedGroup } from "../worker/processGroup.ts"
import { processIdentity } from "../worker/processIdentity.ts"
import { confinedOutput } from "../workspace/StagePaths.ts"
import { DiskFull, ensureReserve, freeBytes, isDiskFull } from "../workspace/DiskSpace.ts"
import { stageDir, Workspace } from "../workspace/Workspace.ts"
import { acquireWorkspaceLock } from "../workspace/WorkspaceLock.ts"
import { snapshotEnvironment } from "./Environment.ts"
import { withResumption } from "./Resume.ts"
import type { Decision, InputArtifact } from "./Freshness.ts"
import {
  absoluteInputs,
  asStoreError,
  decide,
  decideSync,
  freshnessProbe,
  gatherInputs,
  outputsOf
} from "./Freshness.ts"
import { Reporter } from "./Reporter.ts"

export interface RunOptions {
  readonly preset: string
  readonly jobs: number
  readonly cpus: number
  readonly gpus: ReadonlyArray<string>
  readonly keepGoing: boolean
  readonly wait: boolean
  readonly overrides: ReadonlyArray<string>
  readonly argv: ReadonlyArray<string>
  /** Reread every source and cached output the run consumes instead of trusting the stat cache. */
  readonly verify?: boolean
  /**
   * Told the summary of a run stopped by Ctrl-C or SIGTERM, once it is recorded: the interruption
   * ends the program, so this is the caller's only chance to show it.
   */
  readonly onInterrupted?: (summary: RunSummary) => void
}

/**
 * Lets the event loop turn once. Stage bodies, hashing and lineage writes are mostly synchronous, and
 * fibers resume each other in microtasks, so a wide DAG of quick stages would otherwise run from
 * start to end without the loop ever polling: Ctrl-C, timers and child output would wait for the
 * whole run.
 */
const turnEventLoop = Effect.async<void>((resume) => {
  const handle = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(handle))
})

/** Stages the cached sweep settles between two turns of the event loop. */
const SWEEP_CHUNK = 2_000

/** A stage's failure on a full disk, recorded as a StageFailed that says so and keeps the original message. */
const diskFullFailure = (stage: string, workDir: string, cause: unknown): StageFailed => {
  const original = cause instanceof Error ? cause.message : String(cause)
  const full = new DiskFull({ path: workDir, doing: "writing into", freeBytes: freeBytes(workDir) ?? 0 })
  return new StageFailed({ stage, reason: `${full.message} [${original}]` })
}

/** Fail-fast: the first failure stops the run, interrupting what is still running. */
class StopRun extends Data.TaggedError("StopRun")<{ readonly stage: string }> {}

const errorMessage = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    const error = failure.value
    return error instanceof Error ? error.message : String(error)
  }
  return Cause.pretty(cause).split("\n")[0] ?? "unknown error"
}

/** What a run keeps of its summary: the counts and the stages that did something (cached ones are implied). */
const persisted = (summary: RunSummary): Record<string, unknown> => ({
  ...summary,
  stages: summary.stages.filter((s) => s.status !== "cached")
})

export const run = (pipeline: ResolvedPipeline, options: RunOptions) =>
  Effect.scoped(Effect.gen(function*() {
    const ws = yield* Workspace
    yield* acquireWorkspaceLock(ws.lock, ws.root, { wait: options.wait }).pipe(
      Effect.catchAllDefect((defect) =>
        isDiskFull(defect)
          ? Effect.fail(new DiskFull({ path: ws.lock, doing: "writing the lock file", freeBytes: freeBytes(ws.root) ?? 0 }))
          : Effect.die(defect)
      )
    )
    // Room for this run's records even if a stage fills the disk (src/workspace/DiskSpace.ts).
    const noRoom = ensureReserve(ws.root)
    if (noRoom !== undefined) return yield* noRoom
    const lineage = yield* Lineage
    const store = yield* ArtifactStore
    const hasher = yield* ContentHasher
    const reporter = yield* Reporter
    const executor = yield* Executor

    // We hold the lock, so anything still marked running belongs to a dead process; its orphaned workers
    // (and compilers) go too, but only while their pid is still the process recorded: a pid reused since
    // by an unrelated process is left alone.
    const abandonedExecutions = yield* lineage.markAbandoned()
    for (const abandoned of abandonedExecutions) {
      if (abandoned.workerPid === null) continue
      const outcome = yield* stopAbandonedGroup(abandoned.workerPid, abandoned.workerIdentity)
      if (outcome === "stopped") {
        reporter.info(`stopped what the interrupted ${abandoned.stageId} left running (pid ${abandoned.workerPid})`)
      }
    }
    yield* executor.recover(abandonedExecutions)

    const runId = crypto.randomUUID()
    const startedAt = Date.now()
    yield* lineage.startRun({
      id: runId,
      pipeline: pipeline.name,
      preset: pipeline.preset,
      overrides: Object.fromEntries(
        options.overrides.map((o) => [o.slice(0, o.indexOf("=")), o.slice(o.indexOf("=") + 1)])
      ),
      argv: [...options.argv],
      executor: executor.name,
      host: os.hostname(),
      pid: process.pid,
      status: "running",
      startedAt
    })
    const index = yield* lineage.successIndex()
    const probe = yield* freshnessProbe({ verify: options.verify === true })
    // The snapshot spawns compilers and nvidia-smi; a run where everything is cached never needs it.
    const environment = yield* Effect.cached(
      Effect.tap(snapshotEnvironment, (env) => lineage.putEnvironment(env))
    )

    const metricBuffer: Array<MetricRow> = []
    const flushMetrics = Effect.suspend(() => lineage.appendMetrics(metricBuffer.splice(0, metricBuffer.length)))

    const jobs = yield* Effect.makeSemaphore(Math.max(1, options.jobs))
    const cpuSlots = yield* Effect.makeSemaphore(Math.max(1, options.cpus))
    const gpuSlots = yield* Effect.makeSemaphore(options.gpus.length)
    const freeGpus = [...options.gpus]

    /** The stage that found the disk full, if one did. */
    let diskFullAt: string | undefined
    const outcomes = new Map<string, StageOutcome>()
    const outputs = new Map<string, ReadonlyMap<string, InputArtifact>>()
    /** Completion signals of the stages that go through the scheduler (true: outputs available). */
    const done = new Map<string, Deferred.Deferred<boolean>>()

    const record = (stage: ResolvedStage, status: StageStatus, fields: Partial<StageOutcome> = {}) => {
      outcomes.set(stage.id, {
        stage: stage.id,
        kind: stage.definition.kind,
        status,
        execution: null,
        fingerprint: null,
        durationMs: null,
        error: null,
        resumedFrom: null,
        ...fields
      })
    }

    const withGpus = <A, E, R>(count: number, use: (ids: ReadonlyArray<string>) => Effect.Effect<A, E, R>) =>
      count === 0 ? use([]) : gpuSlots.withPermits(count)(
        Effect.acquireUseRelease(
          Effect.sync(() => freeGpus.splice(0, count)),
          use,
          (ids) => Effect.sync(() => freeGpus.push(...ids))
        )
      )

    /** One attempt at a stale stage. Returns whether it succeeded. */
    const execute = (
      stage: ResolvedStage,
      inputs: Record<string, InputArtifact>,
      decision: Decision & { _tag: "Stale" }
    ) =>
      Effect.gen(function*() {
        yield* turnEventLoop
        const fp = decision.fingerprint
        const executionId = crypto.randomUUID()
        const unfinished = stage.definition.resumable ? yield* lineage.lastUnfinished(fp) : undefined
        const workDir = yield* store.prepareStaging(stage.id, fp, stage.definition.resumable === true)
        const logPath = path.join(ws.logs, stageDir(stage.id), `${executionId}.log`)
        fs.mkdirSync(path.dirname(logPath), { recursive: true })
        const env = yield* environment
        // A cluster executor leaves GPUs to the cluster: only local stages take this machine's slots.
        return yield* withGpus(executor.localSlots ? stage.resources.gpus : 0, (gpuIds) =>
          Effect.gen(function*() {
            yield* lineage.startExecution({
              id: executionId,
              runId,
              stageId: stage.id,
              fingerprint: fp,
              version: stage.definition.version,
              params: stage.encodedParams,
              inputHashes: decision.inputHashes,
              workerHash: decision.workerHash,
              sourceHashes: decision.sourceHashes,
              status: "running",
              startedAt: Date.now(),
              host: os.hostname(),
              executor: executor.name,
              logPath: path.relative(ws.root, logPath),
              outputDir: path.relative(ws.root, store.finalDir(stage.id, fp)),
              environmentId: env.id,
              resumedFrom: unfinished?.id ?? null
            }, Object.entries(inputs).map(([name, artifact]) => ({ name, artifactId: artifact.id })))
            reporter.started(
              stage.id,
              withResumption(stage, decision.reasons, unfinished, workDir).map(describeReason).join("; ")
            )
            const t0 = Date.now()
            const ctx: StageContext<unknown> = {
              stageId: stage.id,
              params: stage.params,
              inputs: absoluteInputs(inputs, ws.root),
              output: confinedOutput(stage.id, workDir),
              workDir,
              logPath,
              gpus: gpuIds,
              cpus: executor.localSlots ? Math.min(stage.resources.cpus, options.cpus) : stage.resources.cpus,
              log: (message) => Effect.sync(() => fs.appendFileSync(logPath, `${message}\n`)),
              progress: (step, total) => Effect.sync(() => reporter.progress(stage.id, step, total)),
              metric: (name, step, value) =>
                Effect.suspend(() => {
                  metricBuffer.push({ executionId, name, step, value })
                  return metricBuffer.length >= 2000 ? Effect.orDie(flushMetrics) : Effect.void
                }),
              workerStarted: (pid) =>
                Effect.orDie(lineage.setWorkerPid(executionId, pid, processIdentity(pid) ?? null)),
              outputReady: hasher.prehash
            }
            const finish = (status: "failed" | "interrupted", cause: unknown) =>
              Effect.gen(function*() {
                const durationMs = Date.now() - t0
                // A full disk is named as such, with where the stage was writing; the run stops after it.
                const error = status === "failed" && isDiskFull(cause) ? diskFullFailure(stage.id, workDir, cause) : cause
                if (error !== cause) diskFullAt = stage.id
                yield* flushMetrics
                const encoded = Schema.is(PersistedError)(error)
                  ? Schema.encodeSync(PersistedError)(error)
                  : error === undefined
                  ? null
                  : { _tag: "Unknown", message: String(error) }
                const exitCode = typeof error === "object" && error !== null && "exitCode" in error
                  ? (error as { exitCode: number | null }).exitCode
                  : null
                yield* lineage.finishExecution(executionId, { status, durationMs, error: encoded, exitCode })
                const message = error instanceof Error ? error.message : status
                reporter.finished(stage.id, status, durationMs, status === "failed" ? message : undefined)
                if (status === "failed" && error !== null && typeof error === "object" && "logTail" in error) {
                  const tail = (error as { logTail: ReadonlyArray<string> }).logTail
                  if (tail.length > 0) {
                    reporter.info(`  last lines of ${path.relative(ws.root, logPath)}:\n    ${tail.join("\n    ")}`)
                  }
                }
                record(stage, status, {
                  execution: executionId,
                  fingerprint: fp,
                  durationMs,
                  error: status === "failed" ? message : null,
                  resumedFrom: unfinished?.id ?? null
                })
              }).pipe(Effect.orDie)

            const exit = yield* executor.execute({ stage, ctx, executionId, fingerprint: fp }).pipe(
              // `output` refuses a path outside the stage by throwing; that is the stage's failure, not a crash.
              Effect.catchSomeDefect((defect) =>
                defect instanceof StageFailed ? Option.some(Effect.fail(defect)) : Option.none()
              ),
              Effect.flatMap((result) => Schema.decodeUnknown(stage.definition.result)(result)),
              Effect.mapError((error) =>
                error._tag === "ParseError"
                  ? new StageFailed({ stage: stage.id, reason: `result does not match its schema: ${error.message}` })
                  : error
              ),
              Effect.onInterrupt(() => finish("interrupted", undefined)),
              Effect.exit
            )
            if (Exit.isFailure(exit)) {
              yield* finish("failed", Option.getOrElse(Cause.failureOption(exit.cause), () => errorMessage(exit.cause)))
              return false
            }
            const missing = Object.keys(stage.outputs).filter((name) => !fs.existsSync(path.join(workDir, name)))
            if (missing.length > 0) {
              yield* finish(
                "failed",
                new MissingOutput({ stage: stage.id, output: missing[0]!, path: path.join(workDir, missing[0]!) })
              )
              return false
            }
            const finalDir = yield* store.promote(stage.id, fp)
            const hashed = yield* store.hashOutputs(finalDir, stage.outputs)
            const artifacts: Array<NewArtifact> = []
            const produced = new Map<string, InputArtifact>()
            for (const entry of hashed) {
              if (!("output" in entry) || entry.output === undefined) continue
              const id = crypto.randomUUID()
              artifacts.push({ id, executionId, createdAt: Date.now(), ...entry.output })
              produced.set(entry.name, { id, path: entry.output.path, hash: entry.output.hash })
            }
            const durationMs = Date.now() - t0
            yield* flushMetrics
            yield* hasher.flush
            yield* lineage.finishExecution(executionId, {
              status: "succeeded",
              durationMs,
              exitCode: 0,
              result: Schema.encodeUnknownSync(stage.definition.result)(exit.value),
              artifacts
            })
            outputs.set(stage.id, produced)
            reporter.finished(stage.id, "executed", durationMs)
            record(stage, "executed", {
              execution: executionId,
              fingerprint: fp,
              durationMs,
              resumedFrom: unfinished?.id ?? null
            })
            return true
          }))
      })

    /** Runs a stale stage once its pending upstreams are done; `decision` is known when they were all cached. */
    const processStage = (stage: ResolvedStage, known: Decision | undefined) =>
      Effect.gen(function*() {
        let upstreamOk = true
        for (const up of stage.upstream) {
          const signal = done.get(up)
          if (signal !== undefined) upstreamOk = (yield* Deferred.await(signal)) && upstreamOk
        }
        const signal = done.get(stage.id)!
        if (!upstreamOk) {
          record(stage, "skipped", { error: "an upstream stage failed" })
          reporter.finished(stage.id, "skipped", 0, "an upstream stage failed")
          return yield* Deferred.succeed(signal, false)
        }
        const inputs = gatherInputs(stage, outputs)!
        // Re-checked with the upstreams' actual outputs: identical bytes leave this stage cached (early cutoff).
        const decision = known ?? (yield* decide(stage, inputs, index, probe))
        if (decision._tag === "Fresh") {
          markCached(stage, decision)
          return yield* Deferred.succeed(signal, true)
        }
        if (executor.localSlots && (stage.resources.gpus > options.gpus.length || stage.resources.nodes > 1)) {
          const reason = stage.resources.nodes > 1
            ? `needs ${stage.resources.nodes} nodes; run it with --executor slurm`
            : `needs ${stage.resources.gpus} GPU(s); this executor has ${options.gpus.length}`
          record(stage, "failed", { error: reason, fingerprint: decision.fingerprint })
          reporter.finished(stage.id, "failed", 0, reason)
          yield* Deferred.succeed(signal, false)
          return options.keepGoing ? undefined : yield* new StopRun({ stage: stage.id })
        }
        const needCpus = Math.min(Math.max(1, stage.resources.cpus), options.cpus)
        const body = execute(stage, inputs, decision)
        const ok = yield* jobs.withPermits(1)(executor.localSlots ? cpuSlots.withPermits(needCpus)(body) : body)
        yield* Deferred.succeed(signal, ok)
        // Whatever else would run needs the disk too: a full one stops the run even with --keep-going.
        if (!ok && (!options.keepGoing || diskFullAt !== undefined)) return yield* new StopRun({ stage: stage.id })
      })

    const markCached = (stage: ResolvedStage, decision: Decision & { _tag: "Fresh" }) => {
      outputs.set(stage.id, outputsOf(decision.entry))
      record(stage, "cached", { execution: decision.entry.execution.id, fingerprint: decision.fingerprint })
      reporter.finished(stage.id, "cached", 0)
    }

    /**
     * A synchronous sweep in topological order settles every stage whose upstreams are all cached, without
     * a fiber each: a no-op run of a large DAG costs a stat per output and a lookup per stage. Only the
     * stale stages and what depends on them go on to the scheduler. The event loop turns between chunks.
     */
    const sweep = Effect.gen(function*() {
      const pending: Array<{ stage: ResolvedStage; known: Decision | undefined }> = []
      const settle = (stage: ResolvedStage) => {
        if (stage.upstream.some((up) => done.has(up))) {
          done.set(stage.id, Deferred.unsafeMake<boolean>(FiberId.none))
          pending.push({ stage, known: undefined })
          return
        }
        const decision = decideSync(stage, gatherInputs(stage, outputs)!, index, probe)
        if (decision._tag === "Fresh") {
          markCached(stage, decision)
        } else {
          done.set(stage.id, Deferred.unsafeMake<boolean>(FiberId.none))
          pending.push({ stage, known: decision })
        }
      }
      for (let from = 0; from < pipeline.stages.length; from += SWEEP_CHUNK) {
        if (from > 0) yield* turnEventLoop
        const chunk = pipeline.stages.slice(from, from + SWEEP_CHUNK)
        yield* Effect.try({ try: () => chunk.forEach(settle), catch: asStoreError })
      }
      return pending
    })

    const summarize = (interrupted: boolean): RunSummary => {
      const stages = pipeline.stages.map((stage) =>
        outcomes.get(stage.id) ?? {
          stage: stage.id,
          kind: stage.definition.kind,
          status: "skipped" as const,
          execution: null,
          fingerprint: null,
          durationMs: null,
          error: interrupted ? "run interrupted" : "run stopped after a failure",
          resumedFrom: null
        }
      )
      const count = (status: StageStatus) => stages.filter((s) => s.status === status).length
      const failed = count("failed")
      return {
        runId,
        pipeline: pipeline.name,
        preset: pipeline.preset,
        status: interrupted ? "interrupted" : failed > 0 ? "failed" : "succeeded",
        executed: count("executed"),
        cached: count("cached"),
        failed,
        skipped: count("skipped"),
        interrupted: count("interrupted"),
        wallMs: Date.now() - startedAt,
        stageMs: stages.reduce((sum, s) => sum + (s.status === "executed" ? s.durationMs ?? 0 : 0), 0),
        stages
      }
    }

    const exit = yield* Effect.flatMap(
      sweep,
      (pending) =>
        Effect.forEach(pending, ({ known, stage }) => processStage(stage, known), {
          concurrency: "unbounded",
          discard: true
        })
    ).pipe(
      Effect.onInterrupt(() =>
        Effect.gen(function*() {
          const summary = summarize(true)
          yield* flushMetrics
          yield* hasher.flush
          yield* lineage.endRun(runId, "interrupted", persisted(summary))
          reporter.close()
          options.onInterrupted?.(summary)
        }).pipe(Effect.orDie)
      ),
      Effect.exit
    )
    if (
      Exit.isFailure(exit) &&
      !Option.isSome(Cause.failureOption(exit.cause).pipe(Option.filter((e) => e instanceof StopRun)))
    ) {
      return yield* Effect.failCause(exit.cause as Cause.Cause<never>)
    }
    const summary = summarize(false)
    yield* flushMetrics
    yield* hasher.flush
    yield* lineage.endRun(runId, summary.status, persisted(summary))
    if (diskFullAt !== undefined) {
      reporter.info(
        `the disk holding ${ws.root} is full (found by ${diskFullAt}); free space on it and run again: ` +
          "what was recorded is kept and finished stages stay cached"
      )
    }
    yield* store.emptyTrash.pipe(Effect.ignore)
    reporter.close()
    return summary
  }))
