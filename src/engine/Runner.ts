/**
 * `run`: the local executor. Stages start as soon as their upstreams are done, up to `--jobs` at once
 * and within the CPU and GPU slots; each stage is re-checked against the cache with its upstreams'
 * actual output hashes, so an upstream that reran and produced identical outputs leaves its
 * downstream cached (early cutoff).
 */
import { Cause, Data, Deferred, Effect, Exit, FiberId, Option } from "effect"
import * as crypto from "node:crypto"
import * as os from "node:os"
import type { RunSummary, StageOutcome, StageStatus } from "../domain/Run.ts"
import { Executor, recoverAbandoned, recoverersFor } from "../executor/Executor.ts"
import { Lineage } from "../lineage/Lineage.ts"
import type { ResolvedPipeline, ResolvedStage } from "../Pipeline.ts"
import { ArtifactStore } from "../store/ArtifactStore.ts"
import { ContentHasher } from "../store/ContentHasher.ts"
import { DiskFull, ensureReserve, freeBytes, isDiskFull } from "../workspace/DiskSpace.ts"
import { Workspace } from "../workspace/Workspace.ts"
import { acquireWorkspaceLock } from "../workspace/WorkspaceLock.ts"
import { snapshotEnvironment } from "./Environment.ts"
import type { Decision, InputArtifact } from "./Freshness.ts"
import { asStoreError, decide, decideSync, freshnessProbe, gatherInputs, outputsOf } from "./Freshness.ts"
import { Reporter } from "./Reporter.ts"
import { persistedSummary, summarizeRun } from "./RunSummary.ts"
import type { PlannedStates } from "./Seeding.ts"
import { chooseSeed, intactWith, prefixesOf } from "./Seeding.ts"
import type { RunContext } from "./StageAttempt.ts"
import { attemptStage, metricSink } from "./StageAttempt.ts"

export interface RunOptions {
  readonly preset: string
  readonly jobs: number
  readonly cpus: number
  readonly gpus: ReadonlyArray<string>
  readonly keepGoing: boolean
  readonly wait: boolean
  readonly overrides: ReadonlyArray<string>
  readonly argv: ReadonlyArray<string>
  /** Recorded with the run, so that an audit resolves the pipeline as it did (src/audit/RecordedRun.ts). */
  readonly recorded?: {
    /** The pipeline as the command named it: a registered name, or the absolute path of its module. */
    readonly pipeline: string
    readonly config: Readonly<Record<string, string>>
    /** GPUs the stages settled their params against (GPUs per node under Slurm). */
    readonly executorGpus: number
  }
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

/** Fail-fast: the first failure stops the run, interrupting what is still running. */
class StopRun extends Data.TaggedError("StopRun")<{ readonly stage: string }> {}

export const run = (pipeline: ResolvedPipeline, options: RunOptions) =>
  Effect.scoped(Effect.gen(function*() {
    const ws = yield* Workspace
    yield* acquireWorkspaceLock(ws.lock, ws.root, { wait: options.wait }).pipe(
      Effect.catchAllDefect((defect) =>
        isDiskFull(defect)
          ? Effect.fail(
            new DiskFull({ path: ws.lock, doing: "writing the lock file", freeBytes: freeBytes(ws.root) ?? 0 })
          )
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

    // We hold the lock, so anything still marked running belongs to a dead process: each executor that
    // recorded some cleans up what they left (workers still running, jobs still queued).
    const abandonedExecutions = yield* lineage.markAbandoned()
    yield* recoverAbandoned(abandonedExecutions, yield* recoverersFor(executor))

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
      startedAt,
      ...(options.recorded === undefined ? {} : {
        pipelineSource: options.recorded.pipeline,
        config: options.recorded.config,
        gpus: [...options.gpus],
        executorSettings: { gpus: options.recorded.executorGpus, jobs: options.jobs, cpus: options.cpus }
      })
    })
    const index = yield* lineage.successIndex()
    const probe = yield* freshnessProbe({ verify: options.verify === true })
    // The snapshot spawns compilers and nvidia-smi; a run where everything is cached never needs it.
    const environment = yield* Effect.cached(
      Effect.tap(snapshotEnvironment, (env) => lineage.putEnvironment(env))
    )

    const metrics = metricSink(lineage)

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

    const attempt: RunContext = {
      runId,
      ws,
      lineage,
      store,
      hasher,
      reporter,
      executor,
      environment,
      metrics,
      cpus: options.cpus,
      withGpus,
      record,
      produced: (stage, produced) => outputs.set(stage.id, produced),
      diskFull: (stage) => {
        diskFullAt = stage.id
      }
    }

    /** Stale stages with states to share, by their place in the pipeline's order (src/engine/Seeding.ts). */
    const order = new Map(pipeline.stages.map((stage, i) => [stage.id, i]))
    const sharing: Array<PlannedStates & { readonly index: number }> = []
    const intact = intactWith(probe.check)

    /**
     * A stale stage that could start from a state an earlier stage of this run is still computing waits
     * for that stage, rather than computing the same steps alongside it. Earlier in the pipeline's order
     * only, so no two stages wait on each other.
     */
    const awaitSharedStates = (stage: ResolvedStage, decision: Decision & { _tag: "Stale" }) =>
      Effect.gen(function*() {
        const prefixes = prefixesOf(stage, decision)
        if (prefixes === undefined) return
        const index = order.get(stage.id) ?? 0
        const running: Array<PlannedStates> = []
        for (const other of sharing) {
          if (other.index < index && other.prefixes.family === prefixes.family) {
            if (!(yield* Deferred.isDone(done.get(other.stage)!))) running.push(other)
          }
        }
        sharing.push({ stage: stage.id, prefixes, index })
        if (running.length === 0) return
        const choice = chooseSeed(prefixes, yield* lineage.prefixCandidates(prefixes.family), running, intact)
        if (choice?.source._tag === "Planned") yield* Deferred.await(done.get(choice.source.stage)!)
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
        yield* awaitSharedStates(stage, decision)
        const needCpus = Math.min(Math.max(1, stage.resources.cpus), options.cpus)
        const body = Effect.zipRight(turnEventLoop, attemptStage(attempt, stage, inputs, decision))
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

    const summarize = (interrupted: boolean): RunSummary =>
      summarizeRun(pipeline, { id: runId, startedAt }, outcomes, interrupted)

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
          yield* metrics.flush
          yield* hasher.flush
          yield* lineage.endRun(runId, "interrupted", persistedSummary(summary))
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
    yield* metrics.flush
    yield* hasher.flush
    yield* lineage.endRun(runId, summary.status, persistedSummary(summary))
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
