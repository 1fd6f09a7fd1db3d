/**
 * Reads what a report covers out of lineage: for each target execution its row, environment, outputs,
 * inputs (with the stage and execution that produced each), the metrics asked for and its JSON outputs.
 * Works on any drizzle handle over the lineage schema: the CLI's Lineage service, or a read-only
 * connection opened by the report stage while the run that contains it is still writing.
 */
import Database from "better-sqlite3"
import { and, asc, eq, inArray } from "drizzle-orm"
import { drizzle } from "drizzle-orm/better-sqlite3"
import * as fs from "node:fs"
import * as path from "node:path"
import type { Db } from "../lineage/Lineage.ts"
import * as schema from "../lineage/schema.ts"
import { ReportError } from "./errors.ts"
import type { ArtifactRef, InputRef, StageRecord } from "./model.ts"

export interface CollectTarget {
  readonly stageId: string
  readonly kind: string
  readonly executionId: string
  readonly stale?: string
}

export interface CollectOptions {
  /** Metric names to load for a stage kind (training curves, say); none by default. */
  readonly metrics?: (kind: string) => ReadonlyArray<string>
  /** JSON outputs larger than this are not parsed into the report. */
  readonly maxDocumentBytes?: number
}

/** Training curves are what the report plots from metrics. */
export const reportMetrics = (kind: string): ReadonlyArray<string> =>
  kind === "train" ? ["loss", "lr", "grad_norm", "aux_loss", "z_loss"] : []

const chunks = <A>(xs: ReadonlyArray<A>, size = 500): Array<ReadonlyArray<A>> =>
  Array.from({ length: Math.ceil(xs.length / size) }, (_, i) => xs.slice(i * size, (i + 1) * size))

/** A read-only drizzle handle on a workspace's lineage database (no migrations: it must exist). */
export const openLineageReadOnly = (file: string): { db: Db; close: () => void } => {
  if (!fs.existsSync(file)) throw new ReportError({ where: file, reason: "no lineage database here" })
  const sqlite = new Database(file, { readonly: true, fileMustExist: true, timeout: 30_000 })
  return { db: drizzle(sqlite, { schema }), close: () => sqlite.close() }
}

export const collectRecords = (
  db: Db,
  workspaceRoot: string,
  targets: ReadonlyArray<CollectTarget>,
  options: CollectOptions = {}
): Array<StageRecord> => {
  const ids = targets.map((t) => t.executionId)
  const executions = new Map<string, typeof schema.executions.$inferSelect>()
  const outputs = new Map<string, Array<typeof schema.artifacts.$inferSelect>>()
  const inputs = new Map<string, Array<InputRef>>()
  for (const part of chunks(ids)) {
    for (const row of db.select().from(schema.executions).where(inArray(schema.executions.id, [...part])).all()) {
      executions.set(row.id, row)
    }
    for (
      const row of db.select().from(schema.artifacts).where(inArray(schema.artifacts.executionId, [...part])).all()
    ) {
      const list = outputs.get(row.executionId)
      if (list) list.push(row)
      else outputs.set(row.executionId, [row])
    }
    const consumed = db.select({
      executionId: schema.executionInputs.executionId,
      input: schema.executionInputs.name,
      artifact: schema.artifacts,
      producerStage: schema.executions.stageId
    }).from(schema.executionInputs)
      .innerJoin(schema.artifacts, eq(schema.executionInputs.artifactId, schema.artifacts.id))
      .innerJoin(schema.executions, eq(schema.artifacts.executionId, schema.executions.id))
      .where(inArray(schema.executionInputs.executionId, [...part])).all()
    for (const row of consumed) {
      const ref: InputRef = {
        input: row.input,
        name: row.artifact.name,
        path: row.artifact.path,
        hash: row.artifact.hash,
        size: row.artifact.size,
        producerStage: row.producerStage,
        producerExecution: row.artifact.executionId
      }
      const list = inputs.get(row.executionId)
      if (list) list.push(ref)
      else inputs.set(row.executionId, [ref])
    }
  }
  const environmentIds = [...new Set([...executions.values()].map((e) => e.environmentId).filter((e) => e !== null))]
  const environments = new Map(
    environmentIds.length === 0
      ? []
      : chunks(environmentIds).flatMap((part) =>
        db.select().from(schema.environments).where(inArray(schema.environments.id, [...part])).all()
      ).map((e) => [e.id, e])
  )
  const maxBytes = options.maxDocumentBytes ?? 256 * 2 ** 20
  return targets.map((target) => {
    const execution = executions.get(target.executionId)
    if (execution === undefined) {
      throw new ReportError({ where: target.stageId, reason: `execution ${target.executionId} is not in lineage` })
    }
    const own: Array<ArtifactRef> = (outputs.get(execution.id) ?? [])
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
    const metrics: Record<string, Array<readonly [number, number | null]>> = {}
    const names = options.metrics?.(target.kind) ?? []
    if (names.length > 0) {
      const rows = db.select({ name: schema.metrics.name, step: schema.metrics.step, value: schema.metrics.value })
        .from(schema.metrics)
        .where(and(eq(schema.metrics.executionId, execution.id), inArray(schema.metrics.name, [...names])))
        .orderBy(asc(schema.metrics.name), asc(schema.metrics.step)).all()
      for (const row of rows) (metrics[row.name] ??= []).push([row.step, row.value] as const)
    }
    const environment = execution.environmentId === null ? undefined : environments.get(execution.environmentId)
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
      inputs: (inputs.get(execution.id) ?? []).sort((a, b) => (a.input < b.input ? -1 : 1)),
      metrics,
      documents
    }
  })
}

/**
 * The executions that produced given artifacts, named by workspace-relative path: what the report stage
 * knows of its inputs. The newest live artifact at a path wins (a path is reused only when an output was
 * deleted and its stage rerun with the same fingerprint).
 */
export const producersOf = (
  db: Db,
  paths: ReadonlyArray<string>
): Map<string, { readonly executionId: string; readonly stageId: string }> => {
  const found = new Map<string, { executionId: string; stageId: string; createdAt: number }>()
  for (const part of chunks(paths)) {
    const rows = db.select({
      path: schema.artifacts.path,
      executionId: schema.artifacts.executionId,
      createdAt: schema.artifacts.createdAt,
      collectedAt: schema.artifacts.collectedAt,
      stageId: schema.executions.stageId
    }).from(schema.artifacts)
      .innerJoin(schema.executions, eq(schema.artifacts.executionId, schema.executions.id))
      .where(inArray(schema.artifacts.path, [...part])).all()
    for (const row of rows) {
      if (row.collectedAt !== null) continue
      const known = found.get(row.path)
      if (known === undefined || row.createdAt > known.createdAt) found.set(row.path, row)
    }
  }
  return new Map([...found].map(([p, r]) => [p, { executionId: r.executionId, stageId: r.stageId }]))
}
