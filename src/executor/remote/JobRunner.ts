/**
 * The job-side runner of the remote-job protocol (Protocol.ts), on the node a job runs on: resolves
 * the pipeline as the engine did, checks the stage came out the same (or, re-executing a recorded
 * execution for an audit, takes the params it recorded instead), and runs its body (the same
 * attempt as anywhere, src/engine/StageRun.ts), reporting through the events file (never the
 * lineage database). A requeued job runs this again: a resumable stage continues from its staging directory,
 * any other starts from an empty one.
 *
 * Each run is one attempt of the execution, (submission, SLURM_RESTART_COUNT), fenced (Fence.ts): it
 * announces itself with a `start` event, then waits until the engine names it in the execution's
 * fence before it touches the staging directory; it writes events only while the fence names it,
 * and stops its body as soon as the fence names a later attempt.
 */
import { Cause, Data, Duration, Effect, Either, Exit, Option, Schedule, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { StageFailed } from "../../domain/Errors.ts"
import { snapshotEnvironment } from "../../engine/Environment.ts"
import { canonicalJson } from "../../engine/Fingerprint.ts"
import { withRecordedParams } from "../../engine/RecordedStage.ts"
import { encodeFailure, runStageBody, stageContext } from "../../engine/StageRun.ts"
import { LINEAGE_FACTS_FILE } from "../../lineage/reportFacts.ts"
import type { ResolvedStage } from "../../Pipeline.ts"
import { resolve } from "../../Pipeline.ts"
import { PipelineRegistry } from "../../pipeline/Registry.ts"
import type { EventsWriter } from "./Events.ts"
import { attemptFilter, openEventsWriter, readAllEvents } from "./Events.ts"
import type { FenceToken } from "./Fence.ts"
import { describeToken, readFence, standing } from "./Fence.ts"
import { JobSpec } from "./Protocol.ts"

const readSpec = (file: string) =>
  Effect.try({
    try: () => JSON.parse(fs.readFileSync(file, "utf8")) as unknown,
    catch: (cause) => new StageFailed({ stage: "(job)", reason: `cannot read the job spec ${file}: ${String(cause)}` })
  }).pipe(
    Effect.flatMap(Schema.decodeUnknown(JobSpec)),
    Effect.mapError((error) =>
      error._tag === "ParseError"
        ? new StageFailed({ stage: "(job)", reason: `job spec ${file}: ${error.message}` })
        : error
    )
  )

/** GPUs the job was given: Slurm exports them as CUDA_VISIBLE_DEVICES for --gres=gpu:N. */
const jobGpus = (env: NodeJS.ProcessEnv): ReadonlyArray<string> =>
  (env.CUDA_VISIBLE_DEVICES ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "" && s !== "NoDevFiles")

/** This attempt is no longer the one the fence names: it stops without writing anything more. */
export class AttemptSuperseded extends Data.TaggedError("AttemptSuperseded")<{
  readonly stage: string
  readonly mine: FenceToken
  readonly named: FenceToken | undefined
  readonly reason: string
}> {
  override get message(): string {
    return `${this.stage}: ${describeToken(this.mine)} stopped: ${this.reason}`
  }
}

type MetricHistory = ReadonlyMap<string, ReadonlyArray<{ readonly step: number; readonly value: number | null }>>

/**
 * What the execution's earlier attempts reported, as the engine took it: the events files of its
 * earlier submissions, and this job's own file up to this attempt; per metric, the latest value of
 * each step, in step order. A job that resumes from a checkpoint an earlier attempt wrote reports
 * its training from these.
 */
const metricHistory = (spec: JobSpec, attempt: number): MetricHistory => {
  const byName = new Map<string, Map<number, number | null>>()
  const take = (file: string, before: number) => {
    const filter = attemptFilter()
    for (const event of readAllEvents(file)) {
      if (event.attempt >= before || !filter.accepts(event) || event.t !== "metric") continue
      let steps = byName.get(event.name)
      if (steps === undefined) byName.set(event.name, steps = new Map())
      steps.set(event.step, event.value)
    }
  }
  for (const file of spec.earlierEvents) take(file, Number.POSITIVE_INFINITY)
  take(spec.eventsPath, attempt)
  return new Map(
    [...byName].map((
      [name, steps]
    ) => [name, [...steps].sort(([a], [b]) => a - b).map(([step, value]) => ({ step, value }))])
  )
}

/** Empties a staging directory for a fresh start, keeping the lineage facts the engine wrote for the execution. */
const emptyDirectory = (dir: string) => {
  for (const entry of fs.readdirSync(dir)) {
    if (entry !== LINEAGE_FACTS_FILE) fs.rmSync(path.join(dir, entry), { recursive: true, force: true })
  }
}

/**
 * The stage as the job runs it. Normally as resolved here, which must come out with the params the
 * engine fingerprinted: anything else means the node has another version of the project. Re-executing
 * a recorded execution (an audit), with the params it recorded instead: the point is to run what ran
 * then, which the pipeline may no longer resolve to.
 */
const stageToRun = (spec: JobSpec, resolved: ResolvedStage): Effect.Effect<ResolvedStage, StageFailed> => {
  const fail = (reason: string) => Effect.fail(new StageFailed({ stage: spec.stageId, reason }))
  if (spec.mode !== "reexecute") {
    return canonicalJson(resolved.encodedParams) === spec.params ? Effect.succeed(resolved) : fail(
      "resolves to different params on this node than in the engine (is the project the same version here?)"
    )
  }
  const recorded = Either.try({
    try: () => JSON.parse(spec.params) as unknown,
    catch: (cause) => `the job spec's recorded params are not JSON: ${String(cause)}`
  })
  return Either.match(Either.flatMap(recorded, (params) => withRecordedParams(resolved, params)), {
    onLeft: fail,
    onRight: (stage) =>
      Effect.as(
        Effect.sync(() =>
          fs.appendFileSync(
            spec.logPath,
            `[job] re-executing with the params the execution recorded${
              canonicalJson(resolved.encodedParams) === spec.params ? "" : " (the pipeline resolves to others here)"
            }\n`
          )
        ),
        stage
      )
  })
}

const runStage = (spec: JobSpec, events: EventsWriter, attempt: number, env: NodeJS.ProcessEnv) =>
  Effect.gen(function*() {
    const registry = yield* PipelineRegistry
    const definition = yield* registry.load(spec.pipeline.ref)
    const pipeline = yield* resolve(definition, {
      preset: spec.pipeline.preset,
      overrides: spec.pipeline.overrides,
      config: spec.pipeline.config,
      executor: { gpus: spec.pipeline.gpus }
    })
    const resolved = pipeline.byId.get(spec.stageId)
    if (resolved === undefined) {
      return yield* new StageFailed({ stage: spec.stageId, reason: `pipeline ${pipeline.name} has no such stage here` })
    }
    const stage = yield* stageToRun(spec, resolved)
    fs.mkdirSync(spec.workDir, { recursive: true })
    if (!stage.definition.resumable && (attempt > 0 || spec.submission > 1)) emptyDirectory(spec.workDir)
    const history = attempt > 0 || spec.submission > 1 ? metricHistory(spec, attempt) : new Map()
    const ctx = stageContext(stage, {
      inputs: spec.inputs,
      workDir: spec.workDir,
      logPath: spec.logPath,
      gpus: jobGpus(env),
      cpus: Number(env.SLURM_CPUS_PER_TASK) || spec.cpus,
      ...(spec.seed === undefined ? {} : { seed: spec.seed })
    }, {
      progress: (step, total) => Effect.sync(() => events.write({ t: "progress", step, total })),
      metric: (name, step, value) =>
        Effect.sync(() => events.write({ t: "metric", name, step, value: Number.isFinite(value) ? value : null })),
      // The job's processes end with the job; nothing to record for a later run to clean up.
      workerStarted: () => Effect.void,
      recordedMetric: (name) => history.get(name) ?? []
    })
    return yield* runStageBody(stage, ctx)
  })

export interface StageJobOptions {
  /** The job's environment (SLURM_RESTART_COUNT, SLURM_JOB_ID, CUDA_VISIBLE_DEVICES...). */
  readonly env?: NodeJS.ProcessEnv
  /** How often the fence is read while the body runs. */
  readonly fencePoll?: Duration.DurationInput
  /** How long a new attempt waits for the engine to name it before giving up. */
  readonly fenceWait?: Duration.DurationInput
}

/** `flame-pipe job <pipeline> --spec FILE`: runs one stage in a batch job. */
export const stageJob = (
  specFile: string,
  options: StageJobOptions = {}
): Effect.Effect<void, unknown, PipelineRegistry> =>
  Effect.gen(function*() {
    const env = options.env ?? process.env
    const spec = yield* readSpec(specFile)
    const attempt = Number(env.SLURM_RESTART_COUNT ?? 0) || 0
    const mine: FenceToken = { submission: spec.submission, attempt }
    const poll = options.fencePoll ?? Duration.seconds(1)
    // Read again before every write: a later attempt named in between gets nothing more from this one.
    const events = openEventsWriter(spec.eventsPath, {
      attempt,
      mayWrite: () => standing(spec.fencePath, mine) !== "superseded"
    })
    const log = (line: string) => fs.appendFileSync(spec.logPath, `${line}\n`)
    const superseded = (reason: string) =>
      new AttemptSuperseded({ stage: spec.stageId, mine, named: readFence(spec.fencePath), reason })
    const replacedBy = () => {
      const named = readFence(spec.fencePath)
      return `${named === undefined ? "a later attempt" : describeToken(named)} has replaced it`
    }

    /** Until the engine names this attempt: it may have named a later one already (then this one stops). */
    const wait = Duration.decode(options.fenceWait ?? Duration.minutes(10))
    const awaitTurn = Effect.gen(function*() {
      const deadline = Date.now() + Duration.toMillis(wait)
      for (;;) {
        const now = standing(spec.fencePath, mine)
        if (now === "current") return
        if (now === "superseded") return yield* superseded(replacedBy())
        if (Date.now() > deadline) {
          return yield* new StageFailed({
            stage: spec.stageId,
            reason: `the engine did not name ${describeToken(mine)} in ${spec.fencePath} within ${
              Duration.format(wait)
            } (is the run that submitted it still running?)`
          })
        }
        yield* Effect.sleep(Duration.millis(200))
      }
    })

    /** Fails once the fence names a later attempt; runs beside the body, which it then interrupts. */
    const watchFence = Effect.suspend(() =>
      standing(spec.fencePath, mine) === "superseded" ? Effect.fail(superseded(replacedBy())) : Effect.void
    ).pipe(Effect.repeat(Schedule.spaced(poll)), Effect.zipRight(Effect.never))

    return yield* Effect.gen(function*() {
      events.write({ t: "start", host: os.hostname(), pid: process.pid, at: Date.now() }, true)
      log(`[slurm] job ${env.SLURM_JOB_ID ?? "?"}${attempt > 0 ? ` (restart ${attempt})` : ""} on ${os.hostname()}`)
      yield* awaitTurn
      events.write({ t: "environment", environment: yield* snapshotEnvironment })
      const exit = yield* Effect.raceFirst(Effect.exit(runStage(spec, events, attempt, env)), watchFence)
      if (Exit.isSuccess(exit)) return events.write({ t: "result", value: exit.value }, true)
      const failure = Cause.failureOption(exit.cause)
      const error = Option.isSome(failure) ? failure.value : new Error(Cause.pretty(exit.cause))
      events.write({ t: "failed", error: encodeFailure(error) }, true)
      return yield* Effect.fail(error)
    }).pipe(
      Effect.tapError((error) =>
        Effect.sync(() => {
          if (error instanceof AttemptSuperseded) log(`[slurm] ${error.message}; it wrote nothing more`)
        })
      ),
      // scancel, a time limit or a requeue sends SIGTERM: the body stops its workers, and the engine learns why.
      Effect.onInterrupt(() => Effect.sync(() => events.write({ t: "interrupted" }, true))),
      Effect.ensuring(Effect.sync(() => events.close()))
    )
  })
