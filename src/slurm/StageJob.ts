/**
 * Inside a batch job, on the compute node: resolves the pipeline as the engine did, checks the stage
 * came out the same, and runs its body, reporting through the events file (never the lineage
 * database). A requeued job runs this again: a resumable stage continues from its staging directory,
 * any other starts from an empty one.
 */
import { Cause, Effect, Exit, Option, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { PipelineRegistry } from "../cli/PipelineRegistry.ts"
import { PersistedError, StageFailed } from "../domain/Errors.ts"
import { JobSpec } from "../domain/Slurm.ts"
import { snapshotEnvironment } from "../engine/Environment.ts"
import { canonicalJson } from "../engine/Fingerprint.ts"
import { resolve } from "../Pipeline.ts"
import type { StageContext } from "../Stage.ts"
import type { EventsWriter } from "./Events.ts"
import { openEventsWriter } from "./Events.ts"

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
const jobGpus = (): ReadonlyArray<string> =>
  (process.env.CUDA_VISIBLE_DEVICES ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "" && s !== "NoDevFiles")

const emptyDirectory = (dir: string) => {
  for (const entry of fs.readdirSync(dir)) fs.rmSync(path.join(dir, entry), { recursive: true, force: true })
}

const encodeError = (error: unknown): unknown =>
  Schema.is(PersistedError)(error) ?
    Schema.encodeSync(PersistedError)(error) :
    { _tag: "Unknown", message: error instanceof Error ? error.message : String(error) }

const runStage = (spec: JobSpec, events: EventsWriter, attempt: number) =>
  Effect.gen(function*() {
    const registry = yield* PipelineRegistry
    const definition = yield* registry.load(spec.pipeline.ref)
    const pipeline = yield* resolve(definition, {
      preset: spec.pipeline.preset,
      overrides: spec.pipeline.overrides,
      config: spec.pipeline.config,
      executor: { gpus: spec.pipeline.gpus }
    })
    const stage = pipeline.byId.get(spec.stageId)
    if (stage === undefined) {
      return yield* new StageFailed({ stage: spec.stageId, reason: `pipeline ${pipeline.name} has no such stage here` })
    }
    if (canonicalJson(stage.encodedParams) !== spec.params) {
      return yield* new StageFailed({
        stage: spec.stageId,
        reason: "resolves to different params on this node than in the engine (is the project the same version here?)"
      })
    }
    if (!stage.definition.resumable && (attempt > 0 || spec.submission > 1)) emptyDirectory(spec.workDir)
    fs.mkdirSync(spec.workDir, { recursive: true })
    const ctx: StageContext<unknown> = {
      stageId: stage.id,
      params: stage.params,
      inputs: spec.inputs,
      output: (name) => path.join(spec.workDir, name),
      workDir: spec.workDir,
      logPath: spec.logPath,
      gpus: jobGpus(),
      cpus: Number(process.env.SLURM_CPUS_PER_TASK) || spec.cpus,
      log: (message) => Effect.sync(() => fs.appendFileSync(spec.logPath, `${message}\n`)),
      progress: (step, total) => Effect.sync(() => events.write({ t: "progress", step, total })),
      metric: (name, step, value) =>
        Effect.sync(() => events.write({ t: "metric", name, step, value: Number.isFinite(value) ? value : null })),
      // The job's processes end with the job; nothing to record for a later run to clean up.
      workerStarted: () => Effect.void
    }
    const value = yield* stage.definition.run(ctx)
    const decoded = yield* Schema.decodeUnknown(stage.definition.result)(value).pipe(
      Effect.mapError((error) =>
        new StageFailed({ stage: stage.id, reason: `result does not match its schema: ${error.message}` })
      )
    )
    return Schema.encodeUnknownSync(stage.definition.result)(decoded)
  })

/** `flame-pipe job <pipeline> --spec FILE`: runs one stage in a batch job. */
export const stageJob = (specFile: string): Effect.Effect<void, unknown, PipelineRegistry> =>
  Effect.gen(function*() {
    const spec = yield* readSpec(specFile)
    const events = openEventsWriter(spec.eventsPath)
    const attempt = Number(process.env.SLURM_RESTART_COUNT ?? 0) || 0
    return yield* Effect.gen(function*() {
      events.write({ t: "start", attempt, host: os.hostname(), pid: process.pid, at: Date.now() }, true)
      fs.appendFileSync(
        spec.logPath,
        `[slurm] job ${process.env.SLURM_JOB_ID ?? "?"}${
          attempt > 0 ? ` (restart ${attempt})` : ""
        } on ${os.hostname()}\n`
      )
      events.write({ t: "environment", environment: yield* snapshotEnvironment })
      const exit = yield* Effect.exit(runStage(spec, events, attempt))
      if (Exit.isSuccess(exit)) return events.write({ t: "result", value: exit.value }, true)
      const failure = Cause.failureOption(exit.cause)
      const error = Option.isSome(failure) ? failure.value : new Error(Cause.pretty(exit.cause))
      events.write({ t: "failed", error: encodeError(error) }, true)
      return yield* Effect.fail(error)
    }).pipe(
      // scancel, a time limit or a requeue sends SIGTERM: the body stops its workers, and the engine learns why.
      Effect.onInterrupt(() => Effect.sync(() => events.write({ t: "interrupted" }, true))),
      Effect.ensuring(Effect.sync(() => events.close()))
    )
  })
