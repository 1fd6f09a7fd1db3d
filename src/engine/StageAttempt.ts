/**
 * One attempt at a stale stage inside a run: its execution is recorded, its body handed to the
 * executor with a context that reports into this run, and what came back is recorded: the promoted
 * and hashed outputs of a success, or the encoded failure (a full disk named as such).
 */
import { Cause, Effect, Exit, Option, Schema } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { LineageError } from "../domain/Errors.ts"
import { MissingOutput, StageFailed } from "../domain/Errors.ts"
import { describeReason } from "../domain/Plan.ts"
import type { StageOutcome, StageStatus } from "../domain/Run.ts"
import type { ExecutorShape } from "../executor/Executor.ts"
import type { EnvironmentRow, Lineage, MetricRow, NewArtifact } from "../lineage/Lineage.ts"
import type { ResolvedStage } from "../Pipeline.ts"
import type { StagePrefixes } from "../Stage.ts"
import type { ArtifactStore } from "../store/ArtifactStore.ts"
import type { ContentHasher } from "../store/ContentHasher.ts"
import { processIdentity } from "../worker/processIdentity.ts"
import { DiskFull, freeBytes, isDiskFull } from "../workspace/DiskSpace.ts"
import type { WorkspacePaths } from "../workspace/Workspace.ts"
import { stageDir } from "../workspace/Workspace.ts"
import type { Decision, InputArtifact } from "./Freshness.ts"
import { absoluteInputs } from "./Freshness.ts"
import type { ReporterShape } from "./Reporter.ts"
import { withResumption } from "./Resume.ts"
import { chooseSeed, intactWith, linkReusedOutputs, prefixesOf, prefixRows, seededReason } from "./Seeding.ts"
import { causeMessage, decodeStageResult, encodeFailure, provideLineageFacts, stageContext } from "./StageRun.ts"

/** Metrics stages report, buffered and written to lineage in batches. */
export interface MetricSink {
  readonly push: (row: MetricRow) => Effect.Effect<void>
  readonly flush: Effect.Effect<void, LineageError>
}

export const metricSink = (lineage: Lineage, batch = 2000): MetricSink => {
  const buffer: Array<MetricRow> = []
  const flush = Effect.suspend(() => lineage.appendMetrics(buffer.splice(0, buffer.length)))
  return {
    push: (row) =>
      Effect.suspend(() => {
        buffer.push(row)
        return buffer.length >= batch ? Effect.orDie(flush) : Effect.void
      }),
    flush
  }
}

/** What an attempt needs of the run it belongs to. */
export interface RunContext {
  readonly runId: string
  readonly ws: WorkspacePaths
  readonly lineage: Lineage
  readonly store: ArtifactStore
  readonly hasher: ContentHasher
  readonly reporter: ReporterShape
  readonly executor: ExecutorShape
  /** The environment the run records with its executions (snapshot once, on first use). */
  readonly environment: Effect.Effect<EnvironmentRow, LineageError>
  readonly metrics: MetricSink
  /** This machine's CPU slots (`--cpus`). */
  readonly cpus: number
  /** Takes `count` of this machine's GPUs for the duration of `use`. */
  readonly withGpus: <A, E, R>(
    count: number,
    use: (ids: ReadonlyArray<string>) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E, R>
  readonly record: (stage: ResolvedStage, status: StageStatus, fields?: Partial<StageOutcome>) => void
  /** The outputs a stage produced, for the stages downstream of it. */
  readonly produced: (stage: ResolvedStage, outputs: ReadonlyMap<string, InputArtifact>) => void
  /** A stage found the disk full: the run stops after it. */
  readonly diskFull: (stage: ResolvedStage) => void
}

/** A stage's failure on a full disk, recorded as a StageFailed that says so and keeps the original message. */
const diskFullFailure = (stage: string, workDir: string, cause: unknown): StageFailed => {
  const original = cause instanceof Error ? cause.message : String(cause)
  const full = new DiskFull({ path: workDir, doing: "writing into", freeBytes: freeBytes(workDir) ?? 0 })
  return new StageFailed({ stage, reason: `${full.message} [${original}]` })
}

/**
 * The recorded state a stage starts from, if any (src/engine/Seeding.ts), with its own outputs up to
 * there linked into the staging directory. A state whose files cannot be linked is not used.
 */
const seedFor = (run: RunContext, stage: ResolvedStage, prefixes: StagePrefixes, workDir: string) =>
  Effect.gen(function*() {
    const candidates = yield* run.lineage.prefixCandidates(prefixes.family)
    const choice = chooseSeed(prefixes, candidates, [], intactWith((artifact) => run.store.checkSync(artifact)))
    if (choice === undefined || choice.source._tag !== "Recorded") return undefined
    const candidate = choice.source.candidate
    return yield* Effect.try(() => {
      linkReusedOutputs(workDir, run.ws.root, choice.reused)
      return { choice, candidate }
    }).pipe(
      Effect.catchAll((error) =>
        Effect.as(
          Effect.sync(() =>
            run.reporter.info(
              `  ${stage.id}: cannot reuse ${candidate.artifact.path} (${String(error.error)}); from scratch`
            )
          ),
          undefined
        )
      )
    )
  })

/** One attempt at a stale stage. Returns whether it succeeded. */
export const attemptStage = (
  run: RunContext,
  stage: ResolvedStage,
  inputs: Record<string, InputArtifact>,
  decision: Decision & { _tag: "Stale" }
) =>
  Effect.gen(function*() {
    const { executor, hasher, lineage, reporter, store, ws } = run
    const fp = decision.fingerprint
    const executionId = crypto.randomUUID()
    const unfinished = stage.definition.resumable ? yield* lineage.lastUnfinished(fp) : undefined
    const workDir = yield* store.prepareStaging(stage.id, fp, stage.definition.resumable === true)
    const prefixes = prefixesOf(stage, decision)
    const seed = prefixes === undefined ? undefined : yield* seedFor(run, stage, prefixes, workDir)
    const logPath = path.join(ws.logs, stageDir(stage.id), `${executionId}.log`)
    fs.mkdirSync(path.dirname(logPath), { recursive: true })
    const env = yield* run.environment
    // A cluster executor leaves GPUs to the cluster: only local stages take this machine's slots.
    return yield* run.withGpus(executor.localSlots ? stage.resources.gpus : 0, (gpuIds) =>
      Effect.gen(function*() {
        yield* lineage.startExecution({
          id: executionId,
          runId: run.runId,
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
          resumedFrom: unfinished?.id ?? null,
          seededFrom: seed === undefined ? null : seed.candidate.artifact.id,
          seededStep: seed?.choice.step ?? null
        }, Object.entries(inputs).map(([name, artifact]) => ({ name, artifactId: artifact.id })))
        reporter.started(
          stage.id,
          [
            ...withResumption(stage, decision.reasons, unfinished, workDir),
            ...(seed === undefined ? [] : [seededReason(seed.choice)])
          ].map(describeReason).join("; ")
        )
        const t0 = Date.now()
        const ctx = stageContext(stage, {
          inputs: absoluteInputs(inputs, ws.root),
          workDir,
          logPath,
          gpus: gpuIds,
          cpus: executor.localSlots ? Math.min(stage.resources.cpus, run.cpus) : stage.resources.cpus,
          ...(seed === undefined ? {} : {
            seed: {
              path: store.absolute(seed.candidate.artifact.path),
              step: seed.choice.step,
              stage: seed.candidate.execution.stageId,
              output: seed.candidate.artifact.name,
              execution: seed.candidate.execution.id
            }
          })
        }, {
          progress: (step, total) => Effect.sync(() => reporter.progress(stage.id, step, total)),
          metric: (name, step, value) => run.metrics.push({ executionId, name, step, value }),
          workerStarted: (pid) => Effect.orDie(lineage.setWorkerPid(executionId, pid, processIdentity(pid) ?? null)),
          outputReady: hasher.prehash
        })
        const outcome = {
          execution: executionId,
          fingerprint: fp,
          resumedFrom: unfinished?.id ?? null
        }

        const finish = (status: "failed" | "interrupted", cause: unknown) =>
          Effect.gen(function*() {
            const durationMs = Date.now() - t0
            // A full disk is named as such, with where the stage was writing; the run stops after it.
            const error = status === "failed" && isDiskFull(cause) ? diskFullFailure(stage.id, workDir, cause) : cause
            if (error !== cause) run.diskFull(stage)
            yield* run.metrics.flush
            const exitCode = typeof error === "object" && error !== null && "exitCode" in error
              ? (error as { exitCode: number | null }).exitCode
              : null
            yield* lineage.finishExecution(executionId, { status, durationMs, error: encodeFailure(error), exitCode })
            const message = error instanceof Error ? error.message : status
            reporter.finished(stage.id, status, durationMs, status === "failed" ? message : undefined)
            if (status === "failed" && error !== null && typeof error === "object" && "logTail" in error) {
              const tail = (error as { logTail: ReadonlyArray<string> }).logTail
              if (tail.length > 0) {
                reporter.info(`  last lines of ${path.relative(ws.root, logPath)}:\n    ${tail.join("\n    ")}`)
              }
            }
            run.record(stage, status, { ...outcome, durationMs, error: status === "failed" ? message : null })
          }).pipe(Effect.orDie)

        // Lineage facts the stage asks for are read here, where the database is, whatever runs the body.
        const consumed = Object.fromEntries(Object.entries(inputs).map(([name, artifact]) => [name, artifact.id]))
        const exit = yield* provideLineageFacts(lineage, stage, { artifacts: consumed, workspace: ws.root, workDir })
          .pipe(
            Effect.flatMap(() => executor.execute({ stage, ctx, executionId, fingerprint: fp })),
            Effect.flatMap((encoded) => decodeStageResult(stage, encoded)),
            Effect.onInterrupt(() => finish("interrupted", undefined)),
            Effect.exit
          )
        if (Exit.isFailure(exit)) {
          yield* finish("failed", Option.getOrElse(Cause.failureOption(exit.cause), () => causeMessage(exit.cause)))
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
        yield* run.metrics.flush
        yield* hasher.flush
        yield* lineage.finishExecution(executionId, {
          status: "succeeded",
          durationMs,
          exitCode: 0,
          result: Schema.encodeUnknownSync(stage.definition.result)(exit.value),
          artifacts,
          ...(prefixes === undefined ? {} : { prefixes: prefixRows(prefixes, artifacts) })
        })
        run.produced(stage, produced)
        reporter.finished(stage.id, "executed", durationMs)
        run.record(stage, "executed", { ...outcome, durationMs })
        return true
      }))
  })
