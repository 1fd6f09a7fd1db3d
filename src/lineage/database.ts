/**
 * The connection behind the Lineage service: opening and migrating the SQLite file, and the two ways
 * every query touches it (a read, or an IMMEDIATE write transaction). Only `src/lineage/` uses it.
 */
import Database from "better-sqlite3"
import type { BetterSQLite3Database } from "drizzle-orm/better-sqlite3"
import { drizzle } from "drizzle-orm/better-sqlite3"
import { migrate } from "drizzle-orm/better-sqlite3/migrator"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { LineageError } from "../domain/Errors.ts"
import { fromRoot } from "../ProjectRoot.ts"
import { isDiskFull, releaseReserve } from "../workspace/DiskSpace.ts"
import * as schema from "./schema.ts"

export type Db = BetterSQLite3Database<typeof schema>

const migrationsFolder = fromRoot("drizzle")

/** Opens (creating if needed) and migrates the database. */
export const openDatabase = (file: string): { sqlite: Database.Database; db: Db } => {
  if (file !== ":memory:") fs.mkdirSync(path.dirname(file), { recursive: true })
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

export const describe = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

export const attempt = <A>(reason: string, f: () => A): Effect.Effect<A, LineageError> =>
  Effect.try({ try: f, catch: (cause) => new LineageError({ reason: `${reason}: ${describe(cause)}`, cause }) })

/** What the query groups of the Lineage service are built on. */
export interface Connection {
  readonly db: Db
  readonly sqlite: Database.Database
  readonly read: <A>(reason: string, f: (db: Db) => A) => Effect.Effect<A, LineageError>
  /** One IMMEDIATE transaction: a concurrent writer waits on busy_timeout instead of failing. */
  readonly write: <A>(reason: string, f: (tx: Db) => A) => Effect.Effect<A, LineageError>
}

export const connection = (sqlite: Database.Database, db: Db, workspaceRoot: string): Connection => {
  const transaction = <A>(f: (tx: Db) => A) => db.transaction((tx) => f(tx as unknown as Db), { behavior: "immediate" })
  return {
    db,
    sqlite,
    read: (reason, f) => attempt(reason, () => f(db)),
    /**
     * A write the disk had no room for is retried once, in the room the run's reserve gives back
     * (src/workspace/DiskSpace.ts): a stage that filled the disk still gets its failure recorded.
     */
    write: (reason, f) =>
      attempt(reason, () => {
        try {
          return transaction(f)
        } catch (cause) {
          if (!isDiskFull(cause) || !releaseReserve(workspaceRoot)) throw cause
          return transaction(f)
        }
      })
  }
}
