/**
 * Whole-history reads and the marks garbage collection and restores leave on artifacts: what audits
 * and gc walk, loaded at once, and the `collected_at` they set or clear.
 */
import { eq } from "drizzle-orm"
import type { Connection } from "./database.ts"
import type { ArtifactRow, EnvironmentRow, ExecutionRow, InputRow, PinRow, RunRow } from "./rows.ts"
import * as schema from "./schema.ts"

/** Every row of the tables an audit or a gc reasons over, read at one instant. */
export interface History {
  readonly runs: ReadonlyArray<RunRow>
  readonly executions: ReadonlyArray<ExecutionRow>
  readonly artifacts: ReadonlyArray<ArtifactRow>
  readonly inputs: ReadonlyArray<InputRow>
  readonly environments: ReadonlyArray<EnvironmentRow>
  readonly pins: ReadonlyArray<PinRow>
}

export const historyQueries = ({ read, sqlite, write }: Connection) => ({
  /** One read transaction: a run writing meanwhile cannot show us an execution without its artifacts. */
  history: () =>
    read("loading the records", (db): History =>
      sqlite.transaction(() => ({
        runs: db.select().from(schema.runs).all(),
        executions: db.select().from(schema.executions).all(),
        artifacts: db.select().from(schema.artifacts).all(),
        inputs: db.select().from(schema.executionInputs).all(),
        environments: db.select().from(schema.environments).all(),
        pins: db.select().from(schema.pins).all()
      }))()),

  /** Every execution of a stage, in no particular order. */
  stageExecutions: (stageId: string) =>
    read(
      "looking up the stage",
      (db) => db.select().from(schema.executions).where(eq(schema.executions.stageId, stageId)).all()
    ),

  /** One artifact by its exact id, collected or not. */
  artifact: (id: string) =>
    read(
      "looking up the artifact",
      (db) => db.select().from(schema.artifacts).where(eq(schema.artifacts.id, id)).get()
    ),

  /**
   * Marks artifacts collected and forgets the stat-cache rows of the paths that went (each removed
   * path and everything under it), in one transaction.
   */
  markCollected: (ids: ReadonlyArray<string>, removedPaths: ReadonlyArray<string>) =>
    write("marking artifacts collected", () => {
      const now = Date.now()
      const markOne = sqlite.prepare("update artifacts set collected_at = ? where id = ? and collected_at is null")
      for (const id of ids) markOne.run(now, id)
      const forget = sqlite.prepare("delete from file_stats where path = ? or substr(path, 1, ?) = ?")
      for (const abs of removedPaths) forget.run(abs, abs.length + 1, `${abs}/`)
    }),

  /** An artifact put back in the store (rebuilt bit for bit by an audit) is live again. */
  restoreArtifact: (id: string) =>
    write(
      "recording the restored artifact",
      (tx) => tx.update(schema.artifacts).set({ collectedAt: null }).where(eq(schema.artifacts.id, id)).run()
    )
})
