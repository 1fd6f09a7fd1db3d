/**
 * Completeness and lineage consistency of one execution: it succeeded, has an environment snapshot,
 * its row still hashes to its fingerprint (an edited row does not), every input it hashed is a
 * recorded artifact with that hash whose producer is recorded (so lineage leads back to the
 * sources), and every output its stage declares was recorded.
 */
import { Either, Schema } from "effect"
import type { Finding } from "../domain/Audit.ts"
import { diffParams, fingerprint } from "../engine/Fingerprint.ts"
import type { ExecutionRow } from "../lineage/Lineage.ts"
import type { ResolvedStage } from "../Pipeline.ts"
import type { Records } from "./Records.ts"

const short = (hash: string) => hash.slice(0, 12)

/** What the row's own fields hash to; differs from its fingerprint column when the row was edited. */
export const recomputedFingerprint = (execution: ExecutionRow): string =>
  fingerprint({
    stageId: execution.stageId,
    version: execution.version,
    params: execution.params,
    inputs: execution.inputHashes,
    workerHash: execution.workerHash,
    sources: execution.sourceHashes ?? {}
  })

export const checkExecution = (
  execution: ExecutionRow,
  records: Records,
  stage: ResolvedStage | undefined
): ReadonlyArray<Finding> => {
  const findings: Array<Finding> = []
  const add = (
    check: Finding["check"],
    code: Finding["code"],
    message: string,
    artifact: Finding["artifact"] = null
  ) =>
    findings.push({
      check,
      severity: "fail",
      code,
      stage: execution.stageId,
      execution: execution.id,
      artifact,
      message: `${execution.stageId} (execution ${execution.id.slice(0, 8)}): ${message}`,
      files: []
    })

  if (execution.status !== "succeeded") {
    add("completeness", "not-succeeded", `status is ${execution.status}, yet its outputs are in use`)
  }
  if (execution.environmentId === null || !records.environments.has(execution.environmentId)) {
    add(
      "completeness",
      "no-environment",
      execution.environmentId === null
        ? "no environment snapshot recorded"
        : `environment snapshot ${execution.environmentId} is not recorded`
    )
  }

  const recomputed = recomputedFingerprint(execution)
  if (recomputed !== execution.fingerprint) {
    const changed = stage === undefined ? [] : diffParams(stage.encodedParams, execution.params)
    const hint = changed.length > 0
      ? `; recorded params differ from the pipeline's: ${
        changed.slice(0, 3).map((c) => `${c.key} ${c.from ?? "(unset)"} -> ${c.to ?? "(unset)"}`).join(", ")
      }`
      : ""
    add(
      "lineage",
      "fingerprint-mismatch",
      `its recorded params, inputs, version or worker hash to ${short(recomputed)}, not to its fingerprint ` +
        `${short(execution.fingerprint)}: the row was edited${hint}`
    )
  }

  const edges = records.inputsByExecution.get(execution.id) ?? []
  const edgeNames = new Set(edges.map((e) => e.name))
  for (const edge of edges) {
    const artifact = records.artifacts.get(edge.artifactId)
    if (artifact === undefined) {
      add(
        "lineage",
        "producer-missing",
        `input ${edge.name} refers to artifact ${edge.artifactId}, which is not recorded`
      )
      continue
    }
    const ref = { id: artifact.id, name: artifact.name, path: artifact.path }
    const hashed = execution.inputHashes[edge.name]
    if (hashed !== artifact.hash) {
      add(
        "lineage",
        "input-hash-mismatch",
        `input ${edge.name} was fingerprinted as ${hashed === undefined ? "(nothing)" : short(hashed)}, but its ` +
          `recorded artifact ${artifact.path} has hash ${short(artifact.hash)}`,
        ref
      )
    }
    const producer = records.executions.get(artifact.executionId)
    if (producer === undefined) {
      add(
        "lineage",
        "producer-missing",
        `input ${edge.name} (${artifact.path}) has no recorded producing execution`,
        ref
      )
    }
  }
  for (const name of Object.keys(execution.inputHashes)) {
    if (!edgeNames.has(name)) {
      add("completeness", "input-not-recorded", `input ${name} was hashed but no artifact is recorded for it`)
    }
  }
  if (stage !== undefined) {
    for (const name of Object.keys(stage.inputs)) {
      if (!edgeNames.has(name) && !(name in execution.inputHashes)) {
        add("completeness", "input-not-recorded", `declared input ${name} is not recorded`)
      }
    }
    const decoded = Schema.decodeUnknownEither(stage.definition.params)(execution.params)
    if (Either.isRight(decoded)) {
      const recorded = new Set((records.artifactsByExecution.get(execution.id) ?? []).map((a) => a.name))
      for (const name of Object.keys(stage.definition.outputs(decoded.right))) {
        if (!recorded.has(name)) add("completeness", "output-not-recorded", `declared output ${name} is not recorded`)
      }
    }
  }
  return findings
}
