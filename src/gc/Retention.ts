/**
 * What garbage collection keeps, and why. Roots:
 * - for each pipeline and preset, what its latest successful run used (its stages' executions as
 *   that run matched them: same params, same upstream hashes), and everything later, unsuccessful
 *   runs produced (a training that succeeded in a run whose evaluation failed is not garbage);
 * - pinned executions (all their outputs) and pinned artifacts;
 * - the inputs of executions that are running now (a local one only while a process holds the
 *   workspace lock; a `running` row left by a killed run is not running).
 * Then the closure: an artifact that is kept keeps the inputs of the execution that produced it, so
 * every kept result can be traced, audited and rebuilt. A report stage's inputs are what it cites,
 * so a kept report keeps what it cites.
 * Whatever cannot be matched is kept: a doubt never deletes.
 */
import { Effect, Either } from "effect"
import { walkPipeline } from "../audit/PipelineState.ts"
import { resolveRecordedRun, runSettings } from "../audit/RecordedRun.ts"
import type { Records } from "../audit/Records.ts"
import type { ExecutionRow, RunRow } from "../lineage/Lineage.ts"
import { isModulePath } from "../pipeline/Registry.ts"

export interface Roots {
  /** Executions whose every output is kept, with the reason. */
  readonly executions: ReadonlyMap<string, string>
  readonly artifacts: ReadonlyMap<string, string>
  /** Output directories that must not be touched (executions running now). */
  readonly protectedDirs: ReadonlySet<string>
  readonly warnings: ReadonlyArray<string>
}

export interface Retained {
  /** Kept artifact ids, with the root that keeps them. */
  readonly artifacts: ReadonlyMap<string, string>
}

const runLabel = (run: RunRow) => `${run.pipeline}${run.preset ? ` (${run.preset})` : ""}`

/** Whether an execution marked running really is: see the module comment. */
export const isLive = (execution: ExecutionRow, lockHeld: boolean): boolean =>
  execution.status === "running" && (lockHeld || execution.executor !== "local")

export const findRoots = (records: Records, options: { readonly lockHeld: boolean }) =>
  Effect.gen(function*() {
    const executions = new Map<string, string>()
    const artifacts = new Map<string, string>()
    const protectedDirs = new Set<string>()
    const warnings: Array<string> = []
    const keep = (id: string, reason: string) => {
      if (!executions.has(id)) executions.set(id, reason)
    }

    const groups = new Map<string, Array<RunRow>>()
    for (const run of records.runs.values()) {
      const key = `${run.pipeline}\0${run.preset ?? ""}`
      const list = groups.get(key)
      if (list) list.push(run)
      else groups.set(key, [run])
    }
    const ofRun = (runId: string) => records.executionsByRun.get(runId) ?? []

    for (const runs of groups.values()) {
      runs.sort((a, b) => b.startedAt - a.startedAt)
      const latest = runs.find((r) => r.status === "succeeded")
      const later = latest === undefined ? runs : runs.filter((r) => r.startedAt > latest.startedAt)
      for (const run of later) {
        for (const e of ofRun(run.id)) {
          if (e.status === "succeeded") {
            keep(
              e.id,
              `produced by ${run.status} run ${run.id.slice(0, 8)} of ${runLabel(run)}, after its last success`
            )
          }
        }
      }
      if (latest === undefined) continue
      const label = `latest successful run ${latest.id.slice(0, 8)} of ${runLabel(latest)}`
      const before = latest.endedAt ?? Date.now()
      const stageIdsOfGroup = new Set<string>()
      for (const run of runs) for (const e of ofRun(run.id)) stageIdsOfGroup.add(e.stageId)
      /** Keeps every execution of a stage up to the run; says whether there was any. */
      const keepAllOf = (stageId: string, why: string): boolean => {
        let any = false
        for (const e of records.executionsByStage.get(stageId) ?? []) {
          if (e.status === "succeeded" && e.startedAt <= before) {
            keep(e.id, `${label}: kept whole, ${why}`)
            any = true
          }
        }
        return any
      }
      const pipeline = yield* Effect.either(resolveRecordedRun(latest, records))
      if (Either.isLeft(pipeline)) {
        const module = runSettings(latest).pipeline
        // The bundled CLI imports only the project's own pipelines; a module is loaded from the sources.
        const hint = isModulePath(module)
          ? `; a pipeline module loads when gc runs from the sources: FLAME_PIPE_FROM_SOURCES=1 flame-pipe gc ...`
          : ""
        warnings.push(
          `${label}: cannot resolve its pipeline now (${pipeline.left.message}); every execution of its ` +
            `${stageIdsOfGroup.size} stages is kept${hint}`
        )
        for (const stageId of stageIdsOfGroup) keepAllOf(stageId, "its pipeline cannot be resolved")
        continue
      }
      const states = yield* walkPipeline(pipeline.right, records, { before })
      let unmatched = 0
      for (const state of states) {
        if (state._tag === "Resolved") {
          keep(state.execution.id, label)
        } else if (keepAllOf(state.stage.id, `stage ${state.stage.id} could not be matched (${state.reason})`)) {
          // A stage added to the pipeline since has nothing recorded and needs no warning.
          unmatched++
        }
      }
      if (unmatched > 0) {
        warnings.push(
          `${label}: ${unmatched} stage(s) could not be matched to what that run used (the pipeline changed ` +
            `since?); all their executions up to that run are kept`
        )
      }
    }

    for (const pin of records.pins) {
      const reason = `pinned${pin.note ? ` (${pin.note})` : ""} as ${pin.target}`
      if (pin.executionId !== null) keep(pin.executionId, reason)
      if (pin.artifactId !== null && !artifacts.has(pin.artifactId)) artifacts.set(pin.artifactId, reason)
    }

    for (const execution of records.executions.values()) {
      if (!isLive(execution, options.lockHeld)) continue
      protectedDirs.add(execution.outputDir)
      for (const edge of records.inputsByExecution.get(execution.id) ?? []) {
        if (!artifacts.has(edge.artifactId)) {
          artifacts.set(
            edge.artifactId,
            `input of running execution ${execution.id.slice(0, 8)} (${execution.stageId})`
          )
        }
      }
    }
    return { executions, artifacts, protectedDirs, warnings } satisfies Roots
  })

/** The roots and everything upstream of them. */
export const retain = (records: Records, roots: Roots): Retained => {
  const kept = new Map<string, string>()
  const visited = new Set<string>()
  const queue: Array<{ execution: string; reason: string }> = []
  const keepArtifact = (id: string, reason: string) => {
    if (kept.has(id)) return
    kept.set(id, reason)
    const artifact = records.artifacts.get(id)
    if (artifact !== undefined) queue.push({ execution: artifact.executionId, reason })
  }
  for (const [execution, reason] of roots.executions) {
    for (const artifact of records.artifactsByExecution.get(execution) ?? []) keepArtifact(artifact.id, reason)
    queue.push({ execution, reason })
  }
  for (const [artifact, reason] of roots.artifacts) keepArtifact(artifact, reason)
  while (queue.length > 0) {
    const { execution, reason } = queue.pop()!
    if (visited.has(execution)) continue
    visited.add(execution)
    for (const edge of records.inputsByExecution.get(execution) ?? []) keepArtifact(edge.artifactId, reason)
  }
  return { artifacts: kept }
}
