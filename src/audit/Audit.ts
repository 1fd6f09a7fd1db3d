/**
 * `flame-pipe audit <pipeline|stage|execution>`: can these results be trusted, and would they come
 * out the same again?
 *
 * 1. scope: for a pipeline, the executions its results come from (as a run would reuse them) and
 *    everything upstream of them in lineage; for a stage or execution, that one and its upstream;
 * 2. integrity of every artifact in scope (every byte read, unless --quick);
 * 3. completeness and consistency of every execution's records, and drift from the current code;
 * 4. re-execution of a selection in a scratch workspace, compared bitwise or within tolerances;
 * 5. the environment then and now.
 */
import { Effect, Either, Option, Schema } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import type { AuditTarget, Finding, Reexecution } from "../domain/Audit.ts"
import { AuditReport } from "../domain/Audit.ts"
import { NotFound } from "../domain/Errors.ts"
import { snapshotEnvironment } from "../engine/Environment.ts"
import { fingerprint } from "../engine/Fingerprint.ts"
import { Reporter } from "../engine/Reporter.ts"
import type { ExecutionRow, RunRow } from "../lineage/Lineage.ts"
import { Lineage } from "../lineage/Lineage.ts"
import type { ResolvedPipeline, ResolvedStage } from "../Pipeline.ts"
import { resolve } from "../Pipeline.ts"
import { isModulePath, PipelineRegistry } from "../pipeline/Registry.ts"
import { Workspace } from "../workspace/Workspace.ts"
import { acquireWorkspaceLock, liveHolder } from "../workspace/WorkspaceLock.ts"
import { checkExecution } from "./Completeness.ts"
import { checkDrift, currentHashes } from "./Drift.ts"
import type { WorkerUse } from "./EnvironmentDiff.ts"
import { recordedEnvironments, toSnapshot, workerBinaries } from "./EnvironmentDiff.ts"
import { checkIntegrity } from "./Integrity.ts"
import type { StageState } from "./PipelineState.ts"
import { walkPipeline } from "./PipelineState.ts"
import { resolveRecordedRun, runSettings } from "./RecordedRun.ts"
import { loadRecords, upstreamClosure } from "./Records.ts"
import type { Records } from "./Records.ts"
import { makeReexecutor } from "./Reexecute.ts"
import { selectForReexecution, SelectionError } from "./Selection.ts"

export interface AuditOptions {
  readonly target: string
  readonly preset: string | undefined
  readonly overrides: ReadonlyArray<string>
  readonly config: Readonly<Record<string, string>>
  readonly gpus: ReadonlyArray<string>
  /** GPUs stages settle their params against (per node under Slurm); the count of `gpus` when undefined. */
  readonly executorGpus?: number
  readonly quick: boolean
  /** Stage ids or globs to re-execute. */
  readonly stages: ReadonlyArray<string>
  readonly sample: number
  readonly seed: number
  readonly all: boolean
  /** Re-execute what is collected, missing or damaged, and put matching rebuilds back into the store. */
  readonly restore: boolean
  readonly wait: boolean
  /** Scratch workspace for re-executions; a fresh one inside the workspace when undefined. */
  readonly scratch: string | undefined
  readonly keepScratch: boolean
}

interface Scope {
  readonly target: AuditTarget
  readonly executions: ReadonlyArray<ExecutionRow>
  readonly stages: ReadonlyMap<string, ResolvedStage>
  readonly findings: ReadonlyArray<Finding>
  readonly notes: ReadonlyArray<string>
}

const unresolvedFinding = (state: StageState & { _tag: "Unresolved" }): Finding => ({
  check: "completeness",
  severity: state.upstream === null ? "fail" : "info",
  code: state.upstream === null ? "never-run" : "upstream-unresolved",
  stage: state.stage.id,
  execution: null,
  artifact: null,
  message: state.upstream === null
    ? `${state.stage.id}: ${state.reason} (run the pipeline to produce it)`
    : `${state.stage.id}: not audited, ${state.reason}`,
  files: []
})

/** The pipeline as defined now, walked with current fingerprints first. */
const pipelineScope = (pipeline: ResolvedPipeline, records: Records) =>
  Effect.gen(function*() {
    const states = yield* walkPipeline(pipeline, records, {
      fingerprintOf: (stage, inputs) =>
        Effect.map(currentHashes(stage), (now) =>
          fingerprint({
            stageId: stage.id,
            version: stage.definition.version,
            params: stage.encodedParams,
            inputs,
            workerHash: now.worker,
            sources: now.sources
          }))
    })
    const resolved = states.flatMap((s) => (s._tag === "Resolved" ? [s.execution.id] : []))
    return {
      target: { kind: "pipeline", name: pipeline.name, pipeline: pipeline.name, preset: pipeline.preset },
      executions: upstreamClosure(records, resolved),
      stages: pipeline.byId,
      findings: states.flatMap((s) => (s._tag === "Unresolved" ? [unresolvedFinding(s)] : [])),
      notes: []
    } satisfies Scope
  })

/**
 * The note for a run whose pipeline does not resolve now. The bundled CLI imports only the project's
 * own pipelines; a pipeline module loads when the CLI runs from the sources (as gc says too).
 */
const definitionsUnavailable = (run: RunRow, reason: string): string => {
  const module = runSettings(run).pipeline
  const hint = isModulePath(module)
    ? `; a pipeline module loads when audit runs from the sources: FLAME_PIPE_FROM_SOURCES=1 flame-pipe audit ...`
    : ""
  return `stage definitions unavailable (${reason}): re-execution and drift are skipped${hint}`
}

/** A stage's latest succeeded execution (or an execution named by id) and its upstream. */
const recordScope = (execution: ExecutionRow, kind: "stage" | "execution", name: string, records: Records) =>
  Effect.gen(function*() {
    const run = records.runs.get(execution.runId)
    const notes: Array<string> = []
    let stages: ReadonlyMap<string, ResolvedStage> = new Map()
    if (run !== undefined) {
      const pipeline = yield* Effect.either(resolveRecordedRun(run, records))
      if (Either.isRight(pipeline)) stages = pipeline.right.byId
      else notes.push(definitionsUnavailable(run, pipeline.left.message))
    }
    return {
      target: { kind, name, pipeline: run?.pipeline ?? null, preset: run?.preset ?? null },
      executions: upstreamClosure(records, [execution.id]),
      stages,
      findings: [],
      notes
    } satisfies Scope
  })

const findScope = (options: AuditOptions, records: Records) =>
  Effect.gen(function*() {
    const registry = yield* PipelineRegistry
    const loaded = yield* Effect.either(registry.load(options.target))
    if (Either.isRight(loaded)) {
      const pipeline = yield* resolve(loaded.right, {
        preset: options.preset,
        overrides: options.overrides,
        config: options.config,
        executor: { gpus: options.executorGpus ?? options.gpus.length }
      })
      return yield* pipelineScope(pipeline, records)
    }
    if (loaded.left._tag !== "NotFound") return yield* loaded.left
    const ofStage = records.executionsByStage.get(options.target)
    if (ofStage !== undefined) {
      const latest = ofStage.find((e) => e.status === "succeeded") ?? ofStage[0]!
      return yield* recordScope(latest, "stage", options.target, records)
    }
    const byId = [...records.executions.values()].filter((e) => e.id.startsWith(options.target))
    if (byId.length === 1) return yield* recordScope(byId[0]!, "execution", options.target, records)
    return yield* new NotFound({
      what: "pipeline, stage or execution",
      name: options.target,
      hint: byId.length > 1
        ? "the execution id prefix is ambiguous; give more characters"
        : `pipelines: ${registry.names().join(", ")}`
    })
  })

/** Which binary each execution ran: the stage's worker path, or the artifact it consumed as `worker`. */
const workerUses = (
  scope: Scope,
  records: Records,
  currentArtifactHash: (artifactId: string) => string | null
) =>
  Effect.gen(function*() {
    const uses: Array<WorkerUse> = []
    for (const execution of scope.executions) {
      const stage = scope.stages.get(execution.stageId)
      if (execution.workerHash !== null && stage?.workerPath !== undefined) {
        const now = yield* currentHashes(stage)
        uses.push({ path: stage.workerPath, recordedHash: execution.workerHash, currentHash: now.worker })
      }
      const edge = (records.inputsByExecution.get(execution.id) ?? []).find((e) => e.name === "worker")
      const artifact = edge === undefined ? undefined : records.artifacts.get(edge.artifactId)
      if (artifact !== undefined) {
        uses.push({ path: artifact.path, recordedHash: artifact.hash, currentHash: currentArtifactHash(artifact.id) })
      }
    }
    return uses
  })

export const audit = (options: AuditOptions) =>
  Effect.scoped(Effect.gen(function*() {
    const ws = yield* Workspace
    const lineage = yield* Lineage
    const startedAt = Date.now()
    const id = crypto.randomUUID()
    const notes: Array<string> = []
    if (options.restore) {
      // Restoring writes into the store: no run may be deciding freshness meanwhile.
      yield* acquireWorkspaceLock(ws.lock, ws.root, { wait: options.wait })
    } else {
      const holder = liveHolder(ws.lock)
      if (holder !== undefined) {
        notes.push(`'flame-pipe ${holder.command}' (pid ${holder.pid}) is running in this workspace`)
      }
    }
    const records = yield* loadRecords
    const scope = yield* findScope(options, records)
    notes.push(...scope.notes)

    const artifacts = scope.executions.flatMap((e) => records.artifactsByExecution.get(e.id) ?? [])
    const integrity = yield* checkIntegrity(artifacts, records, { root: ws.root, quick: options.quick })

    const findings: Array<Finding> = [...scope.findings, ...integrity.findings]
    // Rows no execution produced cannot be traced at all, whatever the scope (only a hand edit makes them).
    for (const artifact of records.artifacts.values()) {
      if (records.executions.has(artifact.executionId)) continue
      findings.push({
        check: "lineage",
        severity: "fail",
        code: "producer-missing",
        stage: "(unknown stage)",
        execution: artifact.executionId,
        artifact: { id: artifact.id, name: artifact.name, path: artifact.path },
        message: `artifact ${artifact.path} names execution ${artifact.executionId}, which is not recorded`,
        files: []
      })
    }
    for (const execution of scope.executions) {
      const stage = scope.stages.get(execution.stageId)
      findings.push(...checkExecution(execution, records, stage))
      if (stage !== undefined) findings.push(...(yield* checkDrift(execution, stage)))
    }

    // Re-execution, oldest first: a rebuilt input is ready before what consumes it.
    const candidates = scope.executions.filter((e) => scope.stages.has(e.stageId)).sort((a, b) =>
      a.startedAt - b.startedAt
    )
    // Nothing can be re-executed without the stages' definitions: say why rather than that nothing matches.
    if (scope.stages.size === 0 && (options.stages.length > 0 || options.all || options.sample > 0)) {
      const unavailable = scope.notes.find((n) => n.startsWith("stage definitions unavailable"))
      if (unavailable !== undefined) return yield* new SelectionError({ reason: unavailable })
    }
    const selection = yield* selectForReexecution(
      candidates.map((e) => ({
        execution: e.id,
        stage: e.stageId,
        kind: scope.stages.get(e.stageId)!.definition.kind
      })),
      options
    )
    const selected = new Map<string, Reexecution["selectedBy"]>(selection)
    if (options.restore) {
      for (const execution of candidates) {
        const damaged = (records.artifactsByExecution.get(execution.id) ?? []).some((a) =>
          integrity.states.get(a.id) !== "intact"
        )
        if (damaged && !selected.has(execution.id)) selected.set(execution.id, "restore")
      }
    }
    const scratch = options.scratch ?? path.join(ws.root, ".audit", id)
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        if (!options.keepScratch) fs.rmSync(scratch, { recursive: true, force: true })
      })
    )
    const reexecutor = makeReexecutor(records, integrity, scope.stages, {
      root: ws.root,
      trash: ws.trash,
      scratch,
      gpus: options.gpus,
      restore: options.restore
    })
    for (const execution of candidates) {
      const by = selected.get(execution.id)
      if (by !== undefined) yield* reexecutor.reexecute(execution, by)
    }
    const results = reexecutor.results()
    ;(yield* Reporter).close()
    if (options.keepScratch && results.length > 0) notes.push(`scratch workspace kept at ${scratch}`)

    const current = toSnapshot(yield* snapshotEnvironment)
    const uses = yield* workerUses(scope, records, (artifactId) => integrity.currentHashes.get(artifactId) ?? null)

    const failures = findings.filter((f) => f.severity === "fail").length +
      results.filter((r) => r.status === "differs" || r.status === "failed").length
    const report: AuditReport = {
      id,
      target: scope.target,
      workspace: ws.root,
      startedAt,
      durationMs: Date.now() - startedAt,
      quick: options.quick,
      status: failures > 0 ? "failed" : "passed",
      summary: {
        executions: scope.executions.length,
        artifacts: artifacts.length,
        bytesHashed: integrity.bytesHashed,
        failures,
        warnings: findings.filter((f) => f.severity === "warn").length +
          results.filter((r) => r.status === "skipped").length,
        reexecuted: results.filter((r) => r.status !== "skipped").length,
        reproduced: results.filter((r) => r.status === "reproduced").length
      },
      findings: sortFindings(findings),
      reexecution: { seed: options.seed, results },
      environment: {
        current,
        recorded: recordedEnvironments(scope.executions, records.environments, current),
        workers: workerBinaries(uses)
      },
      notes
    }
    yield* lineage.recordAudit({
      id,
      target: options.target,
      pipeline: scope.target.pipeline,
      status: report.status,
      startedAt,
      durationMs: report.durationMs,
      report
    }).pipe(Effect.mapError((error) => new Error(`cannot record the audit: ${error.reason}`)))
    return report
  }))

const severityOrder = { fail: 0, warn: 1, info: 2 } as const

const sortFindings = (findings: ReadonlyArray<Finding>): ReadonlyArray<Finding> =>
  [...findings].sort((a, b) =>
    severityOrder[a.severity] - severityOrder[b.severity] || (a.stage < b.stage ? -1 : a.stage > b.stage ? 1 : 0)
  )

/** The latest recorded audit of a pipeline and preset (for the HTML report); none when it was never audited. */
export const latestAudit = (pipeline: string, preset: string) =>
  Effect.gen(function*() {
    const lineage = yield* Lineage
    const reports = yield* lineage.recentAudits(pipeline, 50)
    for (const report of reports) {
      const decoded = Schema.decodeUnknownOption(AuditReport)(report)
      if (
        Option.isSome(decoded) && decoded.value.target.kind === "pipeline" && decoded.value.target.preset === preset
      ) {
        return decoded
      }
    }
    return Option.none<AuditReport>()
  })
