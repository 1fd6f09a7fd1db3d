/**
 * The lineage database as a service: a small adapter over drizzle + better-sqlite3, and the only
 * module that touches either. Its users get named queries; the ones a single user needs are grouped
 * in files beside this one (pins, history, audits, Slurm jobs, report facts).
 *
 * SQLite is used synchronously (better-sqlite3); every method is a short transaction. Writers use
 * IMMEDIATE transactions so a concurrent writer waits on busy_timeout instead of failing with
 * SQLITE_BUSY when a deferred transaction tries to upgrade.
 */
import { and, desc, eq, inArray, isNull, like, or, sql } from "drizzle-orm"
import { Effect, Layer } from "effect"
import * as path from "node:path"
import { LineageError } from "../domain/Errors.ts"
import { DiskFull, freeBytes, isDiskFull } from "../workspace/DiskSpace.ts"
import { Workspace } from "../workspace/Workspace.ts"
import { auditQueries } from "./audits.ts"
import { attempt, connection, describe, openDatabase } from "./database.ts"
import { historyQueries } from "./history.ts"
import { pinQueries } from "./pins.ts"
import type { CheckpointPrefixRow } from "./prefixes.ts"
import { prefixQueries } from "./prefixes.ts"
import { reportQueries } from "./reportFacts.ts"
import type {
  EnvironmentRow,
  ExecutionRow,
  FileStatRow,
  MetricRow,
  NewArtifact,
  NewExecution,
  NewRun,
  RunRow
} from "./rows.ts"
import * as schema from "./schema.ts"
import { slurmJobQueries } from "./slurmJobs.ts"

export type { History } from "./history.ts"
export type { PinSubject } from "./pins.ts"
export type { CheckpointPrefixRow, PrefixCandidate } from "./prefixes.ts"
export type { ExecutionFacts, FactsRequest, InputFact, Producer } from "./reportFacts.ts"
export type * from "./rows.ts"

/** A succeeded execution as the cache index holds it; JSON columns stay text until a stale stage needs a diff. */
export interface IndexedExecution {
  readonly id: string
  readonly stageId: string
  readonly fingerprint: string
  readonly version: string
  readonly workerHash: string | null
  readonly durationMs: number | null
  readonly params: string
  readonly inputHashes: string
  readonly sourceHashes: string
}

export interface IndexedArtifact {
  readonly id: string
  readonly name: string
  readonly path: string
  readonly hash: string
}

export interface IndexEntry {
  readonly execution: IndexedExecution
  readonly artifacts: ReadonlyArray<IndexedArtifact>
}

const make = (file: string) =>
  Effect.gen(function*() {
    const workspaceRoot = path.dirname(file)
    const { db, sqlite } = yield* Effect.acquireRelease(
      Effect.try({
        try: () => openDatabase(file),
        catch: (cause) => {
          // SQLite says "disk I/O error" when it cannot even create its WAL on a full disk.
          const free = freeBytes(workspaceRoot)
          const full = isDiskFull(cause) || (free !== undefined && free < 64 * 1024)
          return full
            ? new DiskFull({ path: file, doing: "opening", ...(free === undefined ? {} : { freeBytes: free }) })
            : new LineageError({ reason: `cannot open ${file}: ${describe(cause)}`, cause })
        }
      }).pipe(Effect.mapError((e) => e._tag === "DiskFull" ? new LineageError({ reason: e.message, cause: e }) : e)),
      ({ sqlite }) => Effect.sync(() => sqlite.close())
    )
    const conn = connection(sqlite, db, workspaceRoot)
    const { read, write } = conn

    return {
      ...historyQueries(conn),
      ...auditQueries(conn),
      pins: pinQueries(conn),
      slurmJobs: slurmJobQueries(conn),
      ...reportQueries(conn),
      ...prefixQueries(conn),

      startRun: (row: NewRun) => write("recording the run", (tx) => tx.insert(schema.runs).values(row).run()),

      endRun: (id: string, status: RunRow["status"], summary: Record<string, unknown>) =>
        write("closing the run", (tx) =>
          tx.update(schema.runs).set({ status, summary, endedAt: Date.now() }).where(eq(schema.runs.id, id)).run()),

      /** Executions left `running` by a process that died; only call while holding the workspace lock. */
      markAbandoned: () =>
        write("recovering abandoned executions", (tx) => {
          const abandoned = tx.select().from(schema.executions).where(eq(schema.executions.status, "running")).all()
          tx.update(schema.executions).set({ status: "interrupted", endedAt: Date.now() })
            .where(eq(schema.executions.status, "running")).run()
          tx.update(schema.runs).set({ status: "interrupted", endedAt: Date.now() })
            .where(eq(schema.runs.status, "running")).run()
          return abandoned
        }),

      putEnvironment: (row: EnvironmentRow) =>
        write("recording the environment", (tx) =>
          tx.insert(schema.environments).values(row).onConflictDoNothing().run()),

      startExecution: (row: NewExecution, inputs: ReadonlyArray<{ name: string; artifactId: string }>) =>
        write("recording the execution start", (tx) => {
          tx.insert(schema.executions).values(row).run()
          if (inputs.length > 0) {
            tx.insert(schema.executionInputs).values(inputs.map((i) => ({ executionId: row.id, ...i }))).run()
          }
        }),

      /** The child process an execution started, with its identity (src/worker/processIdentity.ts) when known. */
      setWorkerPid: (id: string, pid: number, identity: string | null) =>
        write("recording the worker pid", (tx) =>
          tx.update(schema.executions).set({ workerPid: pid, workerIdentity: identity })
            .where(eq(schema.executions.id, id)).run()),

      /** Success and its artifacts land together: an execution is never `succeeded` without its outputs recorded. */
      finishExecution: (
        id: string,
        outcome: {
          readonly status: ExecutionRow["status"]
          readonly exitCode?: number | null
          readonly result?: unknown
          readonly error?: unknown
          readonly durationMs: number
          readonly artifacts?: ReadonlyArray<NewArtifact>
          /** The prefix of each artifact that is a state along the computation (a checkpoint). */
          readonly prefixes?: ReadonlyArray<CheckpointPrefixRow>
        }
      ) =>
        write("recording the execution end", (tx) => {
          if (outcome.artifacts && outcome.artifacts.length > 0) {
            tx.insert(schema.artifacts).values([...outcome.artifacts]).run()
          }
          if (outcome.prefixes && outcome.prefixes.length > 0) {
            tx.insert(schema.checkpointPrefixes).values([...outcome.prefixes]).run()
          }
          tx.update(schema.executions).set({
            status: outcome.status,
            endedAt: Date.now(),
            durationMs: outcome.durationMs,
            exitCode: outcome.exitCode ?? null,
            result: outcome.result ?? null,
            error: outcome.error ?? null
          }).where(eq(schema.executions.id, id)).run()
        }),

      appendMetrics: (rows: ReadonlyArray<MetricRow>) =>
        rows.length === 0 ? Effect.void : write("recording metrics", (tx) => {
          // One value per (execution, name, step): a step reported again (a resumed or requeued attempt
          // replaying it) replaces the earlier value. SQLite refuses an upsert that touches one row
          // twice in a statement, so repeats within the batch are dropped first, the last one kept.
          const latest = new Map<string, MetricRow>()
          for (const row of rows) {
            latest.set(`${row.executionId}\u0000${row.name}\u0000${row.step}`, row)
          }
          const unique = [...latest.values()]
          // SQLite limits bound variables per statement; 4 columns x 200 rows stays well under it.
          for (let i = 0; i < unique.length; i += 200) {
            tx.insert(schema.metrics).values(unique.slice(i, i + 200))
              .onConflictDoUpdate({
                target: [schema.metrics.executionId, schema.metrics.name, schema.metrics.step],
                set: { value: sql`excluded.value` }
              }).run()
          }
        }),

      /**
       * The cache index: the newest succeeded execution per fingerprint and per stage, with their artifacts.
       * Read with two narrow statements and JSON left unparsed: a no-op run of 100k stages needs only this.
       */
      successIndex: () =>
        attempt("loading the cache index", () => {
          const executions = sqlite.prepare(
            `select id, stage_id, fingerprint, version, params, input_hashes, worker_hash, source_hashes, duration_ms
             from executions where status = 'succeeded' order by started_at desc`
          ).raw().all() as Array<[string, string, string, string, string, string, string | null, string, number | null]>
          const artifacts = sqlite.prepare(
            "select id, execution_id, name, path, hash from artifacts where collected_at is null"
          ).raw().all() as Array<[string, string, string, string, string]>
          const byExecution = new Map<string, Array<IndexedArtifact>>()
          for (const [id, executionId, name, path, hash] of artifacts) {
            const list = byExecution.get(executionId)
            const artifact = { id, name, path, hash }
            if (list) {
              list.push(artifact)
            } else byExecution.set(executionId, [artifact])
          }
          const byFingerprint = new Map<string, IndexEntry>()
          const latestByStage = new Map<string, IndexEntry>()
          for (
            const [id, stageId, fingerprint, version, params, inputs, workerHash, sources, durationMs] of executions
          ) {
            if (byFingerprint.has(fingerprint) && latestByStage.has(stageId)) {
              continue
            }
            const entry: IndexEntry = {
              execution: {
                id,
                stageId,
                fingerprint,
                version,
                workerHash,
                durationMs,
                params,
                inputHashes: inputs,
                sourceHashes: sources
              },
              artifacts: byExecution.get(id) ?? []
            }
            if (!byFingerprint.has(fingerprint)) {
              byFingerprint.set(fingerprint, entry)
            }
            if (!latestByStage.has(stageId)) {
              latestByStage.set(stageId, entry)
            }
          }
          return { byFingerprint, latestByStage }
        }),

      /** The newest interrupted or failed attempt at this exact fingerprint: what a resumed execution continues. */
      /**
       * The newest execution with this fingerprint that did not finish. `running` ones count only when
       * the caller knows no run is alive (plan, when nothing holds the workspace lock: a killed run
       * leaves its executions marked running until the next run marks them abandoned).
       */
      lastUnfinished: (fingerprint: string, options: { readonly includeRunning?: boolean } = {}) =>
        read("looking up unfinished executions", (db) =>
          db.select().from(schema.executions).where(
            and(
              eq(schema.executions.fingerprint, fingerprint),
              inArray(
                schema.executions.status,
                options.includeRunning === true ? ["interrupted", "failed", "running"] : ["interrupted", "failed"]
              )
            )
          ).orderBy(desc(schema.executions.startedAt)).limit(1).get()),

      execution: (idOrPrefix: string) =>
        read("looking up the execution", (db) =>
          db.select().from(schema.executions).where(like(schema.executions.id, `${idOrPrefix}%`)).limit(2).all()),

      latestExecutionOfStage: (stageId: string) =>
        read("looking up the stage", (db) =>
          db.select().from(schema.executions).where(eq(schema.executions.stageId, stageId))
            .orderBy(desc(schema.executions.startedAt)).limit(1).get()),

      executionsOfRun: (runId: string) =>
        read("looking up the run", (db) =>
          db.select().from(schema.executions).where(eq(schema.executions.runId, runId)).all()),

      latestRun: (pipeline: string) =>
        read("looking up runs", (db) =>
          db.select().from(schema.runs).where(eq(schema.runs.pipeline, pipeline)).orderBy(desc(schema.runs.startedAt))
            .limit(1).get()),

      artifactsOf: (executionId: string) =>
        read("looking up artifacts", (db) =>
          db.select().from(schema.artifacts).where(eq(schema.artifacts.executionId, executionId)).all()),

      inputsOf: (executionId: string) =>
        read("looking up inputs", (db) =>
          db.select({ name: schema.executionInputs.name, artifact: schema.artifacts }).from(schema.executionInputs)
            .innerJoin(schema.artifacts, eq(schema.executionInputs.artifactId, schema.artifacts.id))
            .where(eq(schema.executionInputs.executionId, executionId)).all()),

      consumersOf: (artifactId: string) =>
        read("looking up consumers", (db) =>
          db.select({ name: schema.executionInputs.name, execution: schema.executions }).from(schema.executionInputs)
            .innerJoin(schema.executions, eq(schema.executionInputs.executionId, schema.executions.id))
            .where(eq(schema.executionInputs.artifactId, artifactId)).all()),

      /** An artifact named by id (or prefix), content hash (or prefix) or workspace-relative path. */
      findArtifacts: (needle: string) =>
        read("looking up artifacts", (db) =>
          db.select().from(schema.artifacts).where(
            and(
              or(
                like(schema.artifacts.id, `${needle}%`),
                like(schema.artifacts.hash, `${needle}%`),
                eq(schema.artifacts.path, needle)
              ),
              isNull(schema.artifacts.collectedAt)
            )
          ).limit(20).all()),

      metricsOf: (executionId: string) =>
        read("looking up metrics", (db) =>
          db.select().from(schema.metrics).where(eq(schema.metrics.executionId, executionId)).all()),

      environment: (id: string) =>
        read("looking up the environment", (db) =>
          db.select().from(schema.environments).where(eq(schema.environments.id, id)).get()),

      /** The whole stat cache, read as raw rows: a plan of 10k stages loads 10k of them before deciding anything. */
      fileStats: () =>
        attempt("loading the stat cache", () =>
          (sqlite.prepare("select path, dev, ino, size, mtime_ns, hash from file_stats").raw().all() as Array<
            [string, string, string, number, string, string]
          >).map(([path, dev, ino, size, mtimeNs, hash]): FileStatRow => ({ path, dev, ino, size, mtimeNs, hash }))),

      putFileStats: (rows: ReadonlyArray<FileStatRow>) =>
        rows.length === 0 ? Effect.void : write("updating the stat cache", (tx) => {
          for (let i = 0; i < rows.length; i += 150) {
            tx.insert(schema.fileStats).values(rows.slice(i, i + 150)).onConflictDoUpdate({
              target: schema.fileStats.path,
              set: {
                dev: sqlExcluded("dev"),
                ino: sqlExcluded("ino"),
                size: sqlExcluded("size"),
                mtimeNs: sqlExcluded("mtime_ns"),
                hash: sqlExcluded("hash")
              }
            }).run()
          }
        })
    }
  })

/** In an upsert, the value the conflicting insert proposed. */
const sqlExcluded = (column: string) => sql.raw(`excluded.${column}`)

export class Lineage extends Effect.Service<Lineage>()("flame-pipe/Lineage", {
  scoped: Effect.flatMap(Workspace, (ws) => make(ws.database))
}) {
  /** An in-memory database, for tests that need no workspace on disk. */
  static readonly Test = Layer.scoped(Lineage, Effect.map(make(":memory:"), (service) => Lineage.make(service)))
}
