/**
 * The lineage database as a service: a small adapter over drizzle + better-sqlite3.
 *
 * SQLite is used synchronously (better-sqlite3); every method is a short transaction. Writers use
 * IMMEDIATE transactions so a concurrent writer waits on busy_timeout instead of failing with
 * SQLITE_BUSY when a deferred transaction tries to upgrade.
 */
import Database from "better-sqlite3"
import { and, desc, eq, inArray, isNull, like, or, sql } from "drizzle-orm"
import type { BetterSQLite3Database } from "drizzle-orm/better-sqlite3"
import { drizzle } from "drizzle-orm/better-sqlite3"
import { migrate } from "drizzle-orm/better-sqlite3/migrator"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { LineageError } from "../domain/Errors.ts"
import { fromRoot } from "../ProjectRoot.ts"
import { DiskFull, freeBytes, isDiskFull, releaseReserve } from "../workspace/DiskSpace.ts"
import { Workspace } from "../workspace/Workspace.ts"
import * as schema from "./schema.ts"

export type Db = BetterSQLite3Database<typeof schema>
export type RunRow = typeof schema.runs.$inferSelect
export type ExecutionRow = typeof schema.executions.$inferSelect
export type NewExecution = typeof schema.executions.$inferInsert
export type ArtifactRow = typeof schema.artifacts.$inferSelect
export type NewArtifact = typeof schema.artifacts.$inferInsert
export type EnvironmentRow = typeof schema.environments.$inferSelect
export type MetricRow = typeof schema.metrics.$inferInsert
export type FileStatRow = typeof schema.fileStats.$inferSelect

const migrationsFolder = fromRoot("drizzle")

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

/** Opens (creating if needed) and migrates the database. */
export const openDatabase = (file: string): { sqlite: Database.Database; db: Db } => {
  fs.mkdirSync(path.dirname(file), { recursive: true })
  const sqlite = new Database(file, { timeout: 30_000 })
  sqlite.pragma("journal_mode = WAL")
  sqlite.pragma("synchronous = NORMAL")
  const db = drizzle(sqlite, { schema })
  // drizzle's migrator runs every pending migration in one transaction, where PRAGMA foreign_keys
  // cannot change; so it is switched off around the migration and the result checked afterwards.
  sqlite.pragma("foreign_keys = OFF")
  const applied = () => {
    try {
      return (sqlite.prepare("select count(*) as n from __drizzle_migrations").get() as { n: number }).n
    } catch {
      return 0
    }
  }
  const before = applied()
  migrate(db, { migrationsFolder })
  // The check scans every table, so it runs only when a migration was actually applied.
  if (applied() !== before) {
    const violations = sqlite.pragma("foreign_key_check") as ReadonlyArray<unknown>
    if (violations.length > 0) {
      sqlite.close()
      throw new Error(`foreign key check failed after migration: ${JSON.stringify(violations.slice(0, 5))}`)
    }
  }
  sqlite.pragma("foreign_keys = ON")
  return { sqlite, db }
}

const attempt = <A>(reason: string, f: () => A): Effect.Effect<A, LineageError> =>
  Effect.try({ try: f, catch: (cause) => new LineageError({ reason: `${reason}: ${describe(cause)}`, cause }) })

const describe = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

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
    const transaction = <A>(f: (tx: Db) => A) => db.transaction((tx) => f(tx as unknown as Db), { behavior: "immediate" })
    /**
     * A write the disk had no room for is retried once, in the room the run's reserve gives back
     * (src/workspace/DiskSpace.ts): a stage that filled the disk still gets its failure recorded.
     */
    const write = <A>(reason: string, f: (tx: Db) => A) =>
      attempt(reason, () => {
        try {
          return transaction(f)
        } catch (cause) {
          if (!isDiskFull(cause) || !releaseReserve(workspaceRoot)) throw cause
          return transaction(f)
        }
      })
    const read = <A>(reason: string, f: (db: Db) => A) => attempt(reason, () => f(db))

    return {
      db,
      sqlite,

      startRun: (row: typeof schema.runs.$inferInsert) =>
        write("recording the run", (tx) => tx.insert(schema.runs).values(row).run()),

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
        }
      ) =>
        write("recording the execution end", (tx) => {
          if (outcome.artifacts && outcome.artifacts.length > 0) {
            tx.insert(schema.artifacts).values([...outcome.artifacts]).run()
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
          for (const row of rows) latest.set(`${row.executionId}\u0000${row.name}\u0000${row.step}`, row)
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

      fileStats: () =>
        read("loading the stat cache", (db) =>
          db.select().from(schema.fileStats).all()),

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
