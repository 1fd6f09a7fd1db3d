/**
 * What a report covers, from the lineage facts of its target executions (src/lineage/reportFacts.ts):
 * for each its row, environment, live outputs, inputs (with the stage and execution that produced
 * each), the metrics asked for and its JSON outputs, read from the workspace.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import type { ExecutionFacts, FactsRequest } from "../lineage/Lineage.ts"
import { ReportError } from "./errors.ts"
import type { ArtifactRef, InputRef, StageRecord } from "./model.ts"

export interface CollectTarget {
  readonly stageId: string
  readonly kind: string
  readonly executionId: string
  readonly stale?: string
}

export interface CollectOptions {
  /** JSON outputs larger than this are not parsed into the report. */
  readonly maxDocumentBytes?: number
}

/** Training curves are what the report plots from metrics. */
export const reportMetrics = (kind: string): ReadonlyArray<string> =>
  kind === "train" ? ["loss", "lr", "grad_norm", "aux_loss", "z_loss"] : []

/** The lineage facts the report needs of its targets: each execution, with the metrics its kind plots. */
export const factsRequests = (
  targets: ReadonlyArray<CollectTarget>,
  metrics: (kind: string) => ReadonlyArray<string> = reportMetrics
): ReadonlyArray<FactsRequest> => targets.map((t) => ({ executionId: t.executionId, metrics: metrics(t.kind) }))

export const collectRecords = (
  facts: Readonly<Record<string, ExecutionFacts>>,
  workspaceRoot: string,
  targets: ReadonlyArray<CollectTarget>,
  options: CollectOptions = {}
): Array<StageRecord> => {
  const maxBytes = options.maxDocumentBytes ?? 256 * 2 ** 20
  return targets.map((target) => {
    const fact = facts[target.executionId]
    if (fact === undefined) {
      throw new ReportError({ where: target.stageId, reason: `execution ${target.executionId} is not in lineage` })
    }
    const execution = fact.execution
    const own: Array<ArtifactRef> = fact.outputs
      .filter((a) => a.collectedAt === null)
      .map((a) => ({ name: a.name, path: a.path, hash: a.hash, size: a.size }))
      .sort((a, b) => (a.name < b.name ? -1 : 1))
    const documents: Record<string, unknown> = {}
    for (const artifact of own) {
      if (!artifact.name.endsWith(".json") || artifact.size > maxBytes) continue
      const file = path.join(workspaceRoot, artifact.path)
      try {
        documents[artifact.name] = JSON.parse(fs.readFileSync(file, "utf8"))
      } catch (e) {
        throw new ReportError({
          where: `${target.stageId} output ${artifact.name} (${file})`,
          reason: e instanceof Error ? e.message : String(e)
        })
      }
    }
    const environment = fact.environment
    const inputs: Array<InputRef> = fact.inputs.map((i) => ({
      input: i.input,
      name: i.artifact.name,
      path: i.artifact.path,
      hash: i.artifact.hash,
      size: i.artifact.size,
      producerStage: i.producerStage,
      producerExecution: i.artifact.executionId
    }))
    return {
      stageId: target.stageId,
      kind: target.kind,
      ...(target.stale === undefined ? {} : { stale: target.stale }),
      execution: {
        id: execution.id,
        runId: execution.runId,
        status: execution.status,
        startedAt: execution.startedAt,
        endedAt: execution.endedAt,
        durationMs: execution.durationMs,
        workerHash: execution.workerHash,
        host: execution.host
      },
      environment: environment ? { gitCommit: environment.gitCommit, gitDirty: environment.gitDirty } : null,
      params: execution.params,
      result: execution.result,
      outputs: own,
      inputs: inputs.sort((a, b) => (a.input < b.input ? -1 : 1)),
      metrics: fact.metrics,
      documents
    }
  })
}
