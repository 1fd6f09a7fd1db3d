/** The pins `flame-pipe pin` records, and the lookups that name what a pin protects. */
import { eq } from "drizzle-orm"
import type { Connection } from "./database.ts"
import type { PinRow } from "./rows.ts"
import * as schema from "./schema.ts"

/** What one pin protects: an execution (all of its outputs) or one artifact. */
export type PinSubject = { readonly executionId: string } | { readonly artifactId: string }

const subject = (of: PinSubject) =>
  "executionId" in of ? eq(schema.pins.executionId, of.executionId) : eq(schema.pins.artifactId, of.artifactId)

export const pinQueries = ({ read, write }: Connection) => ({
  /** Every pin. */
  list: () => read("reading pins", (db) => db.select().from(schema.pins).all()),

  /** The pin on this execution or artifact, if there is one. */
  of: (of: PinSubject) => read("reading pins", (db) => db.select().from(schema.pins).where(subject(of)).get()),

  add: (row: PinRow) => write("recording the pin", (tx) => tx.insert(schema.pins).values(row).run()),

  /** Removes one pin by its id; returns how many went (0 or 1). */
  remove: (id: string) =>
    write("removing the pin", (tx) => tx.delete(schema.pins).where(eq(schema.pins.id, id)).run().changes),

  /** Removes the pins on this execution or artifact; returns how many went. */
  removeOf: (of: PinSubject) =>
    write("removing the pin", (tx) => tx.delete(schema.pins).where(subject(of)).run().changes)
})
