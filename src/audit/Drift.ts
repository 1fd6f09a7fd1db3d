/**
 * Drift: whether the stage as defined now would reuse an execution, and if not, why (its code
 * version, its worker binary, a source file outside the workspace). Such an execution is still a
 * valid record, but a run would compute it again, possibly differently.
 */
import { Effect } from "effect"
import * as path from "node:path"
import type { Finding } from "../domain/Audit.ts"
import type { StaleReason } from "../domain/Plan.ts"
import { describeReason } from "../domain/Plan.ts"
import { fingerprint } from "../engine/Fingerprint.ts"
import type { ExecutionRow } from "../lineage/Lineage.ts"
import type { ResolvedStage } from "../Pipeline.ts"
import { ContentHasher } from "../store/ContentHasher.ts"

/** The stage's worker and source hashes now, through the stat cache; what is gone hashes to "(missing)". */
export const currentHashes = (stage: ResolvedStage) =>
  Effect.gen(function*() {
    const hasher = yield* ContentHasher
    const hashOf = (target: string) =>
      Effect.map(Effect.orElseSucceed(hasher.hashOnce(target), () => undefined), (c) => c?.hash ?? "(missing)")
    const worker = stage.workerPath === undefined ? null : yield* hashOf(stage.workerPath)
    const sources: Record<string, string> = {}
    for (const source of stage.sourcePaths) sources[source] = yield* hashOf(path.resolve(source))
    return { worker, sources }
  })

export const checkDrift = (execution: ExecutionRow, stage: ResolvedStage) =>
  Effect.gen(function*() {
    const now = yield* currentHashes(stage)
    const current = fingerprint({
      stageId: execution.stageId,
      version: stage.definition.version,
      params: execution.params,
      inputs: execution.inputHashes,
      workerHash: now.worker,
      sources: now.sources
    })
    if (current === execution.fingerprint) return []
    const reasons: Array<StaleReason> = []
    if (execution.version !== stage.definition.version) {
      reasons.push({ _tag: "VersionChanged", from: execution.version, to: stage.definition.version })
    }
    if ((execution.workerHash ?? null) !== now.worker) {
      reasons.push({ _tag: "WorkerChanged", from: execution.workerHash ?? null, to: now.worker })
    }
    const recordedSources = execution.sourceHashes ?? {}
    for (const source of new Set([...Object.keys(recordedSources), ...Object.keys(now.sources)])) {
      if (recordedSources[source] !== now.sources[source]) reasons.push({ _tag: "SourceChanged", path: source })
    }
    // Nothing to name: the row itself does not hash to its fingerprint, which the lineage check reports.
    if (reasons.length === 0) return []
    const finding: Finding = {
      check: "drift",
      severity: "warn",
      code: "stale",
      stage: execution.stageId,
      execution: execution.id,
      artifact: null,
      message: `${execution.stageId} (execution ${execution.id.slice(0, 8)}) would run again now: ${
        reasons.map(describeReason).join("; ")
      }`,
      files: []
    }
    return [finding]
  })
