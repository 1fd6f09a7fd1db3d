/**
 * Re-execution: a recorded execution runs again in a scratch workspace, with its recorded params and
 * the very artifacts it consumed (from the store, or rebuilt first when they are gone or damaged),
 * and its outputs are compared with what lineage recorded. The body runs as every attempt does
 * (src/engine/StageRun.ts), through the executor audit is given (ReexecutionExecutor.ts: Slurm jobs
 * writing into the scratch workspace), or in this process when none is.
 * Nothing is written to the workspace except, with --restore, rebuilt artifacts that match their
 * record bit for bit.
 */
import type { Scope } from "effect"
import { Effect, Either, Exit, Option, Schema } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import type { OutputComparison, Reexecution } from "../domain/Audit.ts"
import { withRecordedParams } from "../engine/RecordedStage.ts"
import { Reporter } from "../engine/Reporter.ts"
import { causeMessage, decodeStageResult, provideLineageFacts, runStageBody, stageContext } from "../engine/StageRun.ts"
import type { ExecutionRow } from "../lineage/Lineage.ts"
import { Lineage } from "../lineage/Lineage.ts"
import type { ResolvedStage } from "../Pipeline.ts"
import { logTail } from "../worker/runWorker.ts"
import { stageDir } from "../workspace/Workspace.ts"
import { compareMetrics, reproducibilityOf } from "./Compare.ts"
import type { ArtifactState, IntegrityResult } from "./Integrity.ts"
import type { Manifest } from "./Manifest.ts"
import { diffManifests, readManifest } from "./Manifest.ts"
import type { Records } from "./Records.ts"
import { outputsByName } from "./Records.ts"
import type { ScratchExecutor } from "./ReexecutionExecutor.ts"
import { scratchExecutors } from "./ReexecutionExecutor.ts"

export interface ReexecuteOptions {
  readonly root: string
  readonly trash: string
  readonly scratch: string
  readonly gpus: ReadonlyArray<string>
  /** Put rebuilt artifacts that match their record back into the store, where they are gone or damaged. */
  readonly restore: boolean
}

interface Rebuilt {
  readonly abs: string
  readonly hash: string
  readonly exact: boolean
}

/** Moves a path, across file systems if need be, never leaving a partial copy at the destination. */
const moveInto = (from: string, to: string) => {
  fs.mkdirSync(path.dirname(to), { recursive: true })
  try {
    fs.renameSync(from, to)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EXDEV") throw error
    const tmp = `${to}.restore-${process.pid}`
    fs.cpSync(from, tmp, { recursive: true })
    fs.renameSync(tmp, to)
  }
}

export const makeReexecutor = (
  records: Records,
  integrity: IntegrityResult,
  stages: ReadonlyMap<string, ResolvedStage>,
  options: ReexecuteOptions
) => {
  const results = new Map<string, Reexecution>()
  const rebuilt = new Map<string, Rebuilt>()
  const states = new Map<string, ArtifactState>(integrity.states)

  const stateOf = (artifactId: string): ArtifactState => states.get(artifactId) ?? "missing"

  let executors: Effect.Effect.Success<ReturnType<typeof scratchExecutors>> | undefined
  /** The executor the audit was given, set up for the run that recorded `execution`; none: this process. */
  const executorFor = (execution: ExecutionRow) =>
    Effect.gen(function*() {
      executors ??= yield* scratchExecutors(options.scratch)
      if (Option.isNone(executors)) return Either.right(Option.none<ScratchExecutor>())
      return Either.map(yield* executors.value.forRun(records.runs.get(execution.runId)), Option.some)
    })

  const producerOf = (artifactId: string): string => {
    const artifact = records.artifacts.get(artifactId)
    const producer = artifact === undefined ? undefined : records.executions.get(artifact.executionId)
    return producer === undefined ? "(unrecorded)" : `${producer.stageId} ${producer.id.slice(0, 8)}`
  }

  const storedManifest = (abs: string): Manifest | undefined => {
    const known = integrity.manifests.get(abs)
    if (known !== undefined) return known
    try {
      return readManifest(abs)
    } catch {
      return undefined
    }
  }

  const restore = (artifactId: string, rebuiltPath: string) =>
    Effect.gen(function*() {
      const lineage = yield* Lineage
      const artifact = records.artifacts.get(artifactId)!
      const target = path.resolve(options.root, artifact.path)
      yield* Effect.try({
        try: () => {
          // A damaged copy goes to the trash first, so the store never holds a half-replaced artifact.
          if (fs.existsSync(target)) {
            fs.mkdirSync(options.trash, { recursive: true })
            fs.renameSync(target, path.join(options.trash, crypto.randomUUID()))
          }
          moveInto(rebuiltPath, target)
        },
        catch: (cause) => new Error(`cannot restore ${artifact.path}: ${String(cause)}`)
      })
      yield* lineage.restoreArtifact(artifactId).pipe(
        Effect.mapError((error) => new Error(`cannot record the restored ${artifact.path}: ${error.reason}`))
      )
      states.set(artifactId, "intact")
      rebuilt.set(artifactId, { abs: target, hash: artifact.hash, exact: true })
    })

  const skipped = (
    execution: ExecutionRow,
    selectedBy: Reexecution["selectedBy"],
    reason: string,
    reproducibility: Reexecution["reproducibility"] = "bitwise"
  ): Reexecution => ({
    stage: execution.stageId,
    execution: execution.id,
    kind: stages.get(execution.stageId)?.definition.kind ?? "(unknown)",
    reproducibility,
    selectedBy,
    status: "skipped",
    reason,
    durationMs: null,
    recordedDurationMs: execution.durationMs,
    outputs: [],
    metrics: [],
    rebuiltInputs: [],
    restored: []
  })

  const reexecute = (
    execution: ExecutionRow,
    selectedBy: Reexecution["selectedBy"]
  ): Effect.Effect<Reexecution, never, Reporter | Lineage | Scope.Scope> =>
    Effect.gen(function*() {
      const done = results.get(execution.id)
      if (done !== undefined) return done
      const result = yield* attempt(execution, selectedBy)
      results.set(execution.id, result)
      return result
    })

  const attempt = (
    execution: ExecutionRow,
    selectedBy: Reexecution["selectedBy"]
  ): Effect.Effect<Reexecution, never, Reporter | Lineage | Scope.Scope> =>
    Effect.gen(function*() {
      const reporter = yield* Reporter
      const stage = stages.get(execution.stageId)
      if (stage === undefined) {
        return skipped(execution, selectedBy, "the stage is not in the pipeline as defined now: no definition to run")
      }
      const definition = stage.definition
      // As recorded: the params it ran with, whatever the pipeline resolves to now.
      const asRecorded = withRecordedParams(stage, execution.params)
      if (Either.isLeft(asRecorded)) {
        return { ...skipped(execution, selectedBy, asRecorded.left), status: "failed" as const }
      }
      const recordedStage = asRecorded.right
      const { params, resources } = recordedStage
      const reproducibility = reproducibilityOf(definition, params)
      const through = yield* executorFor(execution)
      if (Either.isLeft(through)) {
        return { ...skipped(execution, selectedBy, through.left, reproducibility._tag), status: "failed" as const }
      }
      const executor = through.right
      // A cluster executor places the stage on its own nodes; only this machine's GPUs are counted here.
      const localSlots = Option.match(executor, { onNone: () => true, onSome: (e) => e.localSlots })
      if (localSlots && resources.gpus > options.gpus.length) {
        return skipped(
          execution,
          selectedBy,
          `needs ${resources.gpus} GPU(s); this machine offers ${options.gpus.length} (--gpus)`,
          reproducibility._tag
        )
      }

      // The recorded inputs: from the store when intact, else rebuilt (recursively) from their own records.
      const inputs: Record<string, string> = {}
      const rebuiltInputs: Array<string> = []
      const inexact: Array<string> = []
      for (const edge of records.inputsByExecution.get(execution.id) ?? []) {
        const artifact = records.artifacts.get(edge.artifactId)
        if (artifact === undefined) {
          return skipped(execution, selectedBy, `input ${edge.name} is not a recorded artifact`, reproducibility._tag)
        }
        if (stateOf(artifact.id) === "intact" && !rebuilt.has(artifact.id)) {
          inputs[edge.name] = path.resolve(options.root, artifact.path)
          continue
        }
        if (!rebuilt.has(artifact.id)) {
          const producer = records.executions.get(artifact.executionId)
          if (producer === undefined) {
            return skipped(
              execution,
              selectedBy,
              `input ${edge.name} is ${stateOf(artifact.id)} and its producer is not recorded`,
              reproducibility._tag
            )
          }
          yield* reexecute(producer, "input")
        }
        const source = rebuilt.get(artifact.id)
        if (source === undefined) {
          return skipped(
            execution,
            selectedBy,
            `input ${edge.name} is ${stateOf(artifact.id)} and could not be rebuilt (see ${producerOf(artifact.id)})`,
            reproducibility._tag
          )
        }
        inputs[edge.name] = source.abs
        if (states.get(artifact.id) !== "intact") rebuiltInputs.push(edge.name)
        if (!source.exact) inexact.push(edge.name)
      }

      const workDir = path.join(options.scratch, "staging", stageDir(execution.stageId), execution.id.slice(0, 16))
      const logPath = path.join(options.scratch, "logs", stageDir(execution.stageId), `${execution.id}.log`)
      fs.rmSync(workDir, { recursive: true, force: true })
      fs.mkdirSync(workDir, { recursive: true })
      fs.mkdirSync(path.dirname(logPath), { recursive: true })
      const ctx = stageContext({ id: execution.stageId, params }, {
        inputs,
        workDir,
        logPath,
        gpus: options.gpus.slice(0, resources.gpus),
        // The recorded thread count, not this machine's: results may depend on it.
        cpus: Math.max(1, resources.cpus)
      }, {
        progress: (step, total) => Effect.sync(() => reporter.progress(`audit ${execution.stageId}`, step, total)),
        metric: () => Effect.void,
        workerStarted: () => Effect.void
      })
      reporter.started(`audit ${execution.stageId}`, `re-executing ${execution.id.slice(0, 8)}`)
      const t0 = Date.now()
      // The lineage facts the original read, where the stage asks for them: those of the executions that
      // produced the inputs it recorded.
      const facts = provideLineageFacts(yield* Lineage, recordedStage, {
        artifacts: Object.fromEntries(
          (records.inputsByExecution.get(execution.id) ?? []).map((edge) => [edge.name, edge.artifactId])
        ),
        workspace: options.root,
        workDir
      })
      const exit = yield* Option.match(executor, {
        onNone: () => runStageBody(recordedStage, ctx),
        onSome: (executor) => executor.execute(execution, recordedStage, ctx)
      }).pipe(
        (body) => Effect.zipRight(facts, body),
        Effect.flatMap((encoded) => decodeStageResult(recordedStage, encoded)),
        Effect.exit
      )
      const durationMs = Date.now() - t0
      const base = {
        stage: execution.stageId,
        execution: execution.id,
        kind: definition.kind,
        reproducibility: reproducibility._tag,
        selectedBy,
        durationMs,
        recordedDurationMs: execution.durationMs,
        rebuiltInputs,
        restored: [] as Array<string>
      }
      if (Exit.isFailure(exit)) {
        const tail = logTail(logPath, 5)
        reporter.finished(`audit ${execution.stageId}`, "failed", durationMs)
        return {
          ...base,
          status: "failed",
          reason: `the re-execution failed: ${causeMessage(exit.cause)}${
            tail.length > 0 ? ` (log ${logPath}: ${tail.join(" | ")})` : ""
          }`,
          outputs: [],
          metrics: []
        } satisfies Reexecution
      }

      const recorded = outputsByName(records, execution.id)
      const outputs: Array<OutputComparison> = []
      for (const [name, artifact] of recorded) {
        const abs = path.join(workDir, name)
        const manifest = readManifest(abs)
        const equal = manifest !== undefined && manifest.hash === artifact.hash && manifest.kind === artifact.kind
        const storedAbs = path.resolve(options.root, artifact.path)
        const state = stateOf(artifact.id)
        const stored = state === "collected" || state === "missing" ? undefined : storedManifest(storedAbs)
        const files = manifest !== undefined && stored !== undefined && stored.hash !== manifest.hash
          ? diffManifests({ root: storedAbs, manifest: stored }, { root: abs, manifest })
          : []
        outputs.push({
          name,
          recordedHash: artifact.hash,
          rebuiltHash: manifest?.hash ?? null,
          equal,
          storedHash: stored?.hash ?? null,
          files
        })
        if (manifest !== undefined && !rebuilt.has(artifact.id)) {
          rebuilt.set(artifact.id, { abs, hash: manifest.hash, exact: equal })
        }
      }
      const metrics = reproducibility._tag === "tolerance"
        ? compareMetrics(
          reproducibility.metrics,
          execution.result,
          Schema.encodeUnknownSync(definition.result)(exit.value)
        )
        : []
      const reproduced = reproducibility._tag === "bitwise"
        ? outputs.every((o) => o.equal)
        : metrics.every((m) => m.ok) && outputs.every((o) => o.rebuiltHash !== null)
      const reasons: Array<string> = []
      const differing = outputs.filter((o) => !o.equal)
      if (reproducibility._tag === "bitwise" && differing.length > 0) {
        reasons.push(`outputs differ: ${differing.map((o) => o.name).join(", ")}`)
      }
      const off = metrics.filter((m) => !m.ok)
      if (off.length > 0) reasons.push(`metrics outside their bounds: ${off.map((m) => m.name).join(", ")}`)
      if (inexact.length > 0) {
        reasons.push(`input(s) ${inexact.join(", ")} were rebuilt within tolerance, not bit for bit`)
      }

      const restored: Array<string> = []
      if (options.restore) {
        for (const [name, artifact] of recorded) {
          const output = outputs.find((o) => o.name === name)!
          if (!output.equal || stateOf(artifact.id) === "intact") continue
          const outcome = yield* Effect.either(restore(artifact.id, path.join(workDir, name)))
          if (outcome._tag === "Right") restored.push(name)
          else reasons.push(outcome.left.message)
        }
      }
      reporter.finished(`audit ${execution.stageId}`, reproduced ? "executed" : "failed", durationMs)
      return {
        ...base,
        status: reproduced ? "reproduced" : "differs",
        reason: reasons.length > 0 ? reasons.join("; ") : null,
        outputs,
        metrics,
        restored
      } satisfies Reexecution
    }).pipe(
      Effect.catchAllDefect((defect) =>
        Effect.succeed({
          ...skipped(execution, selectedBy, `the re-execution could not be set up: ${String(defect)}`),
          status: "failed" as const
        })
      )
    )

  return {
    reexecute,
    /** Every re-execution so far, rebuilt inputs included, in the order they finished. */
    results: () => [...results.values()]
  }
}
