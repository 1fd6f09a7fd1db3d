/**
 * Where an audit's re-executions run (`audit --executor`). Without this service they run in the
 * audit's own process, as the local executor runs a stage. With it, through the executor it makes
 * (Slurm batch jobs), set up in the scratch workspace as a workspace of its own: the executor writes
 * its files there (a job's script, spec, events and fence) and keeps its records in the scratch's
 * lineage, where each re-execution is recorded as an execution for them to belong to. The audited
 * workspace gets nothing.
 *
 * A batch job resolves the pipeline again to find the stage's definition, and runs it with the params
 * the execution recorded (the job spec's `reexecute` mode). It resolves it as the run that recorded
 * the execution did (that run's pipeline, preset, overrides and settings), so the executor is made per
 * recorded invocation: one serves every execution recorded with the same.
 */
import type { Scope } from "effect"
import { Cause, Context, Effect, Either, Exit, Layer, Option } from "effect"
import * as crypto from "node:crypto"
import * as os from "node:os"
import * as path from "node:path"
import { StageFailed } from "../domain/Errors.ts"
import type { WorkerFailed } from "../domain/Errors.ts"
import { canonicalJson } from "../engine/Fingerprint.ts"
import { Reporter } from "../engine/Reporter.ts"
import { encodeFailure } from "../engine/StageRun.ts"
import type { ExecutorShape } from "../executor/Executor.ts"
import { Executor } from "../executor/Executor.ts"
import type { ExecutionRow, RunRow } from "../lineage/Lineage.ts"
import { Lineage } from "../lineage/Lineage.ts"
import type { ResolvedStage } from "../Pipeline.ts"
import type { StageContext } from "../Stage.ts"
import { Workspace } from "../workspace/Workspace.ts"
import { runSettings } from "./RecordedRun.ts"

/** How a run resolved its pipeline, as it recorded it: what a job resolves again. */
export interface RecordedInvocation {
  /** A pipeline name or the path of a pipeline module. */
  readonly pipeline: string
  readonly preset: string | undefined
  /** `--set` overrides, `stage.key=value`. */
  readonly overrides: ReadonlyArray<string>
  readonly config: Readonly<Record<string, string>>
}

export interface ReexecutionExecutorShape {
  /** The executor's name, as the scratch lineage records it with each re-execution. */
  readonly name: string
  /**
   * The executor for re-executions of what a run recorded with `invocation`; it gets the scratch
   * workspace as its Workspace and Lineage. Its failure says why it could not be set up.
   */
  readonly layer: (invocation: RecordedInvocation) => Layer.Layer<Executor, unknown, Lineage | Workspace | Reporter>
}

export class ReexecutionExecutor extends Context.Tag("flame-pipe/audit/ReexecutionExecutor")<
  ReexecutionExecutor,
  ReexecutionExecutorShape
>() {}

export const recordedInvocation = (run: RunRow): RecordedInvocation => {
  const settings = runSettings(run)
  return {
    pipeline: settings.pipeline,
    preset: run.preset ?? undefined,
    overrides: Object.entries(run.overrides).map(([key, value]) => `${key}=${String(value)}`),
    config: settings.config
  }
}

/** One re-execution through the executor, recorded in the scratch lineage around it. */
export interface ScratchExecutor {
  /** Whether the stage takes this machine's GPUs (not a cluster's). */
  readonly localSlots: boolean
  readonly execute: (
    execution: ExecutionRow,
    stage: ResolvedStage,
    ctx: StageContext<unknown>
  ) => Effect.Effect<unknown, StageFailed | WorkerFailed>
}

const message = (error: unknown): string => error instanceof Error ? error.message : String(error)

/**
 * The executors of one audit's re-executions in `scratch`, made on first use and kept until the
 * audit's scope closes (a Slurm executor follows its jobs until then); none without the service.
 */
export const scratchExecutors = (scratch: string) =>
  Effect.gen(function*() {
    const service = yield* Effect.serviceOption(ReexecutionExecutor)
    if (Option.isNone(service)) return Option.none()
    const made = service.value
    const reporter = yield* Reporter
    let scratchContext: Context.Context<Lineage | Workspace | Reporter> | undefined
    const executors = new Map<string, Either.Either<ScratchExecutor, string>>()

    /** The scratch workspace's services; its lineage is created on first use, closed with the scope. */
    const scratchServices = Effect.gen(function*() {
      if (scratchContext !== undefined) return scratchContext
      const context = yield* Layer.build(Layer.provideMerge(Lineage.Default, Workspace.layer(scratch)))
      scratchContext = Context.add(context, Reporter, reporter)
      return scratchContext
    })

    const make = (invocation: RecordedInvocation, run: RunRow) =>
      Effect.gen(function*() {
        const context = yield* scratchServices
        const lineage = Context.get(context, Lineage)
        const executor: ExecutorShape = Context.get(
          yield* Layer.build(made.layer(invocation).pipe(Layer.provide(Layer.succeedContext(context)))),
          Executor
        )
        // One run in the scratch lineage per executor: the re-executions it ran, and how it resolved the pipeline.
        const runId = crypto.randomUUID()
        let failed = false
        yield* lineage.startRun({
          id: runId,
          pipeline: run.pipeline,
          preset: run.preset,
          overrides: run.overrides,
          argv: process.argv.slice(2),
          executor: executor.name,
          host: os.hostname(),
          pid: process.pid,
          status: "running",
          startedAt: Date.now(),
          pipelineSource: invocation.pipeline,
          config: invocation.config
        })
        yield* Effect.addFinalizer((exit) =>
          lineage.endRun(
            runId,
            Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause)
              ? "interrupted"
              : failed
              ? "failed"
              : "succeeded",
            {}
          ).pipe(Effect.ignore)
        )
        const relative = (p: string) => path.relative(scratch, p)
        const recordFailure = (stageId: string) => (error: { readonly message: string }) =>
          new StageFailed({ stage: stageId, reason: `cannot record the re-execution in ${scratch}: ${error.message}` })

        return {
          localSlots: executor.localSlots,
          execute: (execution, stage, ctx) =>
            Effect.gen(function*() {
              const id = crypto.randomUUID()
              yield* lineage.startExecution({
                id,
                runId,
                stageId: execution.stageId,
                fingerprint: execution.fingerprint,
                version: execution.version,
                params: execution.params,
                inputHashes: execution.inputHashes,
                workerHash: execution.workerHash,
                sourceHashes: execution.sourceHashes,
                status: "running",
                startedAt: Date.now(),
                host: os.hostname(),
                executor: executor.name,
                logPath: relative(ctx.logPath),
                outputDir: relative(ctx.workDir)
              }, []).pipe(Effect.mapError(recordFailure(execution.stageId)))
              const t0 = Date.now()
              const finish = (
                status: "succeeded" | "failed" | "interrupted",
                fields: { result?: unknown; error?: unknown }
              ) =>
                lineage.finishExecution(id, { status, durationMs: Date.now() - t0, ...fields }).pipe(
                  Effect.mapError(recordFailure(execution.stageId))
                )
              const exit = yield* executor.execute({
                stage,
                ctx,
                executionId: id,
                fingerprint: execution.fingerprint,
                reexecution: true
              }).pipe(
                Effect.onInterrupt(() => Effect.ignore(finish("interrupted", {}))),
                Effect.exit
              )
              // Its outputs are compared, not stored: the scratch lineage records no artifacts.
              if (Exit.isSuccess(exit)) {
                yield* finish("succeeded", { result: exit.value })
                return exit.value
              }
              failed = true
              const failure = Cause.failureOption(exit.cause)
              yield* finish("failed", {
                error: encodeFailure(Option.getOrElse(failure, () => Cause.pretty(exit.cause).split("\n")[0]))
              })
              return yield* exit
            })
        } satisfies ScratchExecutor
      })

    /** The executor for re-executions of what `run` recorded; why there is none, when it cannot be set up. */
    const forRun = (
      run: RunRow | undefined
    ): Effect.Effect<Either.Either<ScratchExecutor, string>, never, Scope.Scope> =>
      Effect.gen(function*() {
        if (run === undefined) return Either.left("the run that recorded it is not in lineage")
        const invocation = recordedInvocation(run)
        const key = canonicalJson(invocation)
        const known = executors.get(key)
        if (known !== undefined) return known
        const outcome = yield* make(invocation, run).pipe(
          Effect.mapError((error) => `cannot set up the ${made.name} executor: ${message(error)}`),
          Effect.either
        )
        executors.set(key, outcome)
        return outcome
      })

    return Option.some({ forRun })
  })
