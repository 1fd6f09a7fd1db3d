/**
 * What a report shows of executions, read out of lineage: for each one its row, environment, live
 * outputs, inputs (with the stage that produced each), the metrics asked for; and which execution
 * produced an artifact at a given path. Plain JSON-shaped values, so that they can be handed to a
 * stage body that runs where the database is not (a Slurm compute node).
 */
import Database from "better-sqlite3"
import { and, asc, eq, inArray } from "drizzle-orm"
import { drizzle } from "drizzle-orm/better-sqlite3"
import * as fs from "node:fs"
import { LineageError } from "../domain/Errors.ts"
import type { Connection, Db } from "./database.ts"
import type { ArtifactRow, EnvironmentRow, ExecutionRow } from "./rows.ts"
import * as schema from "./schema.ts"

export interface InputFact {
  readonly input: string
  readonly artifact: ArtifactRow
  readonly producerStage: string
}

export interface ExecutionFacts {
  readonly execution: ExecutionRow
  readonly environment: EnvironmentRow | null
  /** Every output row, collected ones included (their `collectedAt` says). */
  readonly outputs: ReadonlyArray<ArtifactRow>
  readonly inputs: ReadonlyArray<InputFact>
  /** The metrics asked for, by name, in step order. */
  readonly metrics: Readonly<Record<string, ReadonlyArray<readonly [number, number | null]>>>
}

/** An execution whose facts are wanted, with the metrics to load for it. */
export interface FactsRequest {
  readonly executionId: string
  readonly metrics: ReadonlyArray<string>
}

export interface Producer {
  readonly executionId: string
  readonly stageId: string
}

const chunks = <A>(xs: ReadonlyArray<A>, size = 500): Array<ReadonlyArray<A>> =>
  Array.from({ length: Math.ceil(xs.length / size) }, (_, i) => xs.slice(i * size, (i + 1) * size))

/** Facts of the requested executions, by execution id; an id lineage does not know is left out. */
export const readExecutionFacts = (
  db: Db,
  requests: ReadonlyArray<FactsRequest>
): Record<string, ExecutionFacts> => {
  const ids = [...new Set(requests.map((r) => r.executionId))]
  const executions = new Map<string, ExecutionRow>()
  const outputs = new Map<string, Array<ArtifactRow>>()
  const inputs = new Map<string, Array<InputFact>>()
  const push = <A>(map: Map<string, Array<A>>, key: string, value: A) => {
    const list = map.get(key)
    if (list) list.push(value)
    else map.set(key, [value])
  }
  for (const part of chunks(ids)) {
    for (const row of db.select().from(schema.executions).where(inArray(schema.executions.id, [...part])).all()) {
      executions.set(row.id, row)
    }
    for (
      const row of db.select().from(schema.artifacts).where(inArray(schema.artifacts.executionId, [...part])).all()
    ) push(outputs, row.executionId, row)
    const consumed = db.select({
      executionId: schema.executionInputs.executionId,
      input: schema.executionInputs.name,
      artifact: schema.artifacts,
      producerStage: schema.executions.stageId
    }).from(schema.executionInputs)
      .innerJoin(schema.artifacts, eq(schema.executionInputs.artifactId, schema.artifacts.id))
      .innerJoin(schema.executions, eq(schema.artifacts.executionId, schema.executions.id))
      .where(inArray(schema.executionInputs.executionId, [...part])).all()
    for (const { executionId, ...fact } of consumed) push(inputs, executionId, fact)
  }
  const environmentIds = [...new Set([...executions.values()].map((e) => e.environmentId).filter((e) => e !== null))]
  const environments = new Map(
    chunks(environmentIds).flatMap((part) =>
      db.select().from(schema.environments).where(inArray(schema.environments.id, [...part])).all()
    ).map((e) => [e.id, e])
  )
  const metricNames = new Map<string, Set<string>>()
  for (const r of requests) {
    const names = metricNames.get(r.executionId) ?? new Set()
    for (const name of r.metrics) names.add(name)
    metricNames.set(r.executionId, names)
  }
  const out: Record<string, ExecutionFacts> = {}
  for (const [id, execution] of executions) {
    const metrics: Record<string, Array<readonly [number, number | null]>> = {}
    const names = [...(metricNames.get(id) ?? [])]
    if (names.length > 0) {
      const rows = db.select({ name: schema.metrics.name, step: schema.metrics.step, value: schema.metrics.value })
        .from(schema.metrics)
        .where(and(eq(schema.metrics.executionId, id), inArray(schema.metrics.name, names)))
        .orderBy(asc(schema.metrics.name), asc(schema.metrics.step)).all()
      for (const row of rows) (metrics[row.name] ??= []).push([row.step, row.value] as const)
    }
    out[id] = {
      execution,
      environment: execution.environmentId === null ? null : environments.get(execution.environmentId) ?? null,
      outputs: outputs.get(id) ?? [],
      inputs: inputs.get(id) ?? [],
      metrics
    }
  }
  return out
}

/**
 * The executions that produced the live artifacts at these workspace-relative paths. The newest wins
 * (a path is reused only when an output was deleted and its stage rerun with the same fingerprint).
 */
export const readProducers = (db: Db, paths: ReadonlyArray<string>): Record<string, Producer> => {
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
  return Object.fromEntries([...found].map(([p, r]) => [p, { executionId: r.executionId, stageId: r.stageId }]))
}

export const reportQueries = ({ read, sqlite }: Connection) => ({
  /** Facts of the requested executions, read in one transaction. */
  executionFacts: (requests: ReadonlyArray<FactsRequest>) =>
    read("reading what the report shows", (db) => sqlite.transaction(() => readExecutionFacts(db, requests))()),

  producersOf: (paths: ReadonlyArray<string>) =>
    read("looking up the producers of the inputs", (db) => readProducers(db, paths))
})

/**
 * The report queries on a workspace's database opened read-only, without migrating it, by a stage body
 * on the machine that runs the engine while the run is still writing.
 */
export const openReportFactsReadOnly = (file: string) => {
  if (!fs.existsSync(file)) throw new LineageError({ reason: `no lineage database at ${file}` })
  const sqlite = new Database(file, { readonly: true, fileMustExist: true, timeout: 30_000 })
  const db = drizzle(sqlite, { schema })
  return {
    executionFacts: (requests: ReadonlyArray<FactsRequest>) =>
      sqlite.transaction(() => readExecutionFacts(db, requests))(),
    producersOf: (paths: ReadonlyArray<string>) => readProducers(db, paths),
    close: () => sqlite.close()
  }
}
