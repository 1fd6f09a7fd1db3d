/**
 * What a report shows of executions, read out of lineage: for each one its row, environment, live
 * outputs, inputs (with the stage that produced each), the metrics asked for; and which execution
 * produced each input of a stage. Plain JSON-shaped values: the engine reads them for a stage body that
 * asks (StageDefinition.lineageFacts) and hands them over as a file in its staging directory, so the
 * body reads them wherever it runs (a Slurm compute node cannot share the engine's SQLite database).
 */
import { and, asc, eq, inArray } from "drizzle-orm"
import { Effect, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { EnvironmentSnapshot } from "../domain/Audit.ts"
import { StageFailed } from "../domain/Errors.ts"
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

/** An input of a stage whose producing execution's facts are wanted, with the metrics to load for it. */
export interface InputFactsRequest {
  readonly input: string
  readonly artifactId: string
  readonly metrics: ReadonlyArray<string>
}

/** What a stage body that asks for lineage facts is handed (StageDefinition.lineageFacts). */
export interface LineageFacts {
  /** The workspace the artifact paths below are relative to. */
  readonly workspace: string
  /** The execution that produced each input asked about, by input name. */
  readonly producers: Readonly<Record<string, Producer>>
  /** Facts of those executions, by execution id. */
  readonly executions: Readonly<Record<string, ExecutionFacts>>
}

/**
 * The executions that produced these inputs, found by the artifact each consumes (not by its path,
 * which a later execution may have reused), and their facts. An artifact lineage does not know is
 * left out of `producers`.
 */
export const readInputFacts = (
  db: Db,
  wanted: ReadonlyArray<InputFactsRequest>
): Omit<LineageFacts, "workspace"> => {
  const byArtifact = new Map<string, Producer>()
  for (const part of chunks([...new Set(wanted.map((w) => w.artifactId))])) {
    const rows = db.select({
      artifactId: schema.artifacts.id,
      executionId: schema.artifacts.executionId,
      stageId: schema.executions.stageId
    }).from(schema.artifacts)
      .innerJoin(schema.executions, eq(schema.artifacts.executionId, schema.executions.id))
      .where(inArray(schema.artifacts.id, [...part])).all()
    for (const row of rows) byArtifact.set(row.artifactId, { executionId: row.executionId, stageId: row.stageId })
  }
  const producers: Record<string, Producer> = {}
  const requests: Array<FactsRequest> = []
  for (const w of wanted) {
    const producer = byArtifact.get(w.artifactId)
    if (producer === undefined) continue
    producers[w.input] = producer
    requests.push({ executionId: producer.executionId, metrics: w.metrics })
  }
  return { producers, executions: readExecutionFacts(db, requests) }
}

export const reportQueries = ({ read, sqlite }: Connection) => ({
  /** Facts of the requested executions, read in one transaction. */
  executionFacts: (requests: ReadonlyArray<FactsRequest>) =>
    read("reading what the report shows", (db) => sqlite.transaction(() => readExecutionFacts(db, requests))()),

  /** The producers of a stage's inputs and their facts, read in one transaction. */
  inputFacts: (wanted: ReadonlyArray<InputFactsRequest>) =>
    read("reading the lineage facts of the inputs", (db) => sqlite.transaction(() => readInputFacts(db, wanted))())
})

// ---- the file a stage body reads ----------------------------------------------------------------

/**
 * The facts' file in the staging directory. It is promoted with the outputs, so a stage's output
 * directory keeps what it was made from; it is not an output (nothing hashes it).
 */
export const LINEAGE_FACTS_FILE = ".lineage-facts.json"

const Hashes = Schema.Record({ key: Schema.String, value: Schema.String })

const ArtifactSchema = Schema.Struct({
  id: Schema.String,
  executionId: Schema.String,
  name: Schema.String,
  path: Schema.String,
  kind: Schema.Literal("file", "dir"),
  hash: Schema.String,
  size: Schema.Number,
  createdAt: Schema.Number,
  collectedAt: Schema.NullOr(Schema.Number)
})

const ExecutionSchema = Schema.Struct({
  id: Schema.String,
  runId: Schema.String,
  stageId: Schema.String,
  fingerprint: Schema.String,
  version: Schema.String,
  params: Schema.Unknown,
  inputHashes: Hashes,
  workerHash: Schema.NullOr(Schema.String),
  sourceHashes: Hashes,
  status: Schema.Literal("running", "succeeded", "failed", "interrupted"),
  startedAt: Schema.Number,
  endedAt: Schema.NullOr(Schema.Number),
  durationMs: Schema.NullOr(Schema.Number),
  exitCode: Schema.NullOr(Schema.Number),
  host: Schema.String,
  executor: Schema.String,
  workerPid: Schema.NullOr(Schema.Number),
  workerIdentity: Schema.NullOr(Schema.String),
  logPath: Schema.String,
  outputDir: Schema.String,
  result: Schema.Unknown,
  error: Schema.Unknown,
  environmentId: Schema.NullOr(Schema.String),
  resumedFrom: Schema.NullOr(Schema.String),
  // Absent in facts files written before executions could be seeded.
  seededFrom: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null }),
  seededStep: Schema.optionalWith(Schema.NullOr(Schema.Number), { default: () => null })
})

/** The environment row: audit's snapshot of it, and when it was recorded. */
const EnvironmentSchema = Schema.extend(EnvironmentSnapshot, Schema.Struct({ createdAt: Schema.Number }))

/** The facts' file, decoded: the body trusts nothing it did not check. */
export const LineageFactsFile = Schema.Struct({
  workspace: Schema.String,
  producers: Schema.Record({
    key: Schema.String,
    value: Schema.Struct({ executionId: Schema.String, stageId: Schema.String })
  }),
  executions: Schema.Record({
    key: Schema.String,
    value: Schema.Struct({
      execution: ExecutionSchema,
      environment: Schema.NullOr(EnvironmentSchema),
      outputs: Schema.Array(ArtifactSchema),
      inputs: Schema.Array(
        Schema.Struct({ input: Schema.String, artifact: ArtifactSchema, producerStage: Schema.String })
      ),
      metrics: Schema.Record({
        key: Schema.String,
        value: Schema.Array(Schema.Tuple(Schema.Number, Schema.NullOr(Schema.Number)))
      })
    })
  })
})

// A column added to the lineage tables fails to compile here until the file's schema has it too.
const asFacts = (decoded: typeof LineageFactsFile.Type): LineageFacts => decoded

/** Writes the facts into a staging directory, under a temporary name first: a reader never sees half a file. */
export const writeLineageFacts = (workDir: string, facts: LineageFacts): void => {
  const file = path.join(workDir, LINEAGE_FACTS_FILE)
  const temporary = `${file}.${process.pid}.tmp`
  try {
    fs.writeFileSync(temporary, JSON.stringify(facts))
    fs.renameSync(temporary, file)
  } catch (error) {
    fs.rmSync(temporary, { force: true })
    throw error
  }
}

/**
 * The lineage facts the engine wrote for this attempt. A stage reads them only if its definition asks
 * for them (StageDefinition.lineageFacts); a missing or damaged file fails the stage, naming the file.
 */
export const readLineageFacts = (
  ctx: { readonly stageId: string; readonly workDir: string }
): Effect.Effect<LineageFacts, StageFailed> => {
  const file = path.join(ctx.workDir, LINEAGE_FACTS_FILE)
  return Effect.try({
    try: () => JSON.parse(fs.readFileSync(file, "utf8")) as unknown,
    catch: (cause) =>
      new StageFailed({
        stage: ctx.stageId,
        reason: `cannot read the lineage facts the engine prepared (${file}): ${
          cause instanceof Error ? cause.message : String(cause)
        }`
      })
  }).pipe(
    Effect.flatMap((json) =>
      Schema.decodeUnknown(LineageFactsFile)(json).pipe(
        Effect.mapError((error) =>
          new StageFailed({ stage: ctx.stageId, reason: `lineage facts ${file}: ${error.message}` })
        )
      )
    ),
    Effect.map(asFacts)
  )
}
