/**
 * Checkpoint prefixes: for each recorded state along a long computation (a training checkpoint), the
 * fingerprint of what determined it. The queries a stale stage asks to find a state it can start from.
 */
import { and, desc, eq, isNull } from "drizzle-orm"
import type { Connection } from "./database.ts"
import * as schema from "./schema.ts"

export type CheckpointPrefixRow = typeof schema.checkpointPrefixes.$inferInsert

/** A recorded state a stage of the same family might start from, with where it lives and who made it. */
export interface PrefixCandidate {
  readonly step: number
  readonly prefix: string
  readonly artifact: { readonly id: string; readonly name: string; readonly path: string; readonly hash: string }
  readonly execution: {
    readonly id: string
    readonly stageId: string
    readonly durationMs: number | null
    /** Where that execution itself started (it may have been seeded too): its duration covers the rest. */
    readonly seededStep: number | null
  }
}

export const prefixQueries = ({ read }: Connection) => ({
  /**
   * The live states of a family, newest step first: of succeeded executions only, and only artifacts
   * gc has not collected (whether their bytes are intact is the caller's check).
   */
  prefixCandidates: (family: string) =>
    read("looking up recorded checkpoints", (db) =>
      db.select({
        step: schema.checkpointPrefixes.step,
        prefix: schema.checkpointPrefixes.prefix,
        artifact: {
          id: schema.artifacts.id,
          name: schema.artifacts.name,
          path: schema.artifacts.path,
          hash: schema.artifacts.hash
        },
        execution: {
          id: schema.executions.id,
          stageId: schema.executions.stageId,
          durationMs: schema.executions.durationMs,
          seededStep: schema.executions.seededStep
        }
      }).from(schema.checkpointPrefixes)
        .innerJoin(schema.artifacts, eq(schema.checkpointPrefixes.artifactId, schema.artifacts.id))
        .innerJoin(schema.executions, eq(schema.artifacts.executionId, schema.executions.id))
        .where(and(
          eq(schema.checkpointPrefixes.family, family),
          eq(schema.executions.status, "succeeded"),
          isNull(schema.artifacts.collectedAt)
        ))
        .orderBy(desc(schema.checkpointPrefixes.step), desc(schema.executions.startedAt))
        .all() as ReadonlyArray<PrefixCandidate>),

  /** The prefix recorded for an artifact, if it is such a state. */
  prefixOf: (artifactId: string) =>
    read(
      "looking up a checkpoint prefix",
      (db) =>
        db.select().from(schema.checkpointPrefixes).where(eq(schema.checkpointPrefixes.artifactId, artifactId)).get()
    )
})
