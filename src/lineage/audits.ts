/** The outcomes of `flame-pipe audit`, kept for the report. */
import { desc, eq } from "drizzle-orm"
import type { Connection } from "./database.ts"
import type { AuditRow } from "./rows.ts"
import * as schema from "./schema.ts"

export const auditQueries = ({ read, write }: Connection) => ({
  recordAudit: (row: AuditRow) => write("recording the audit", (tx) => tx.insert(schema.audits).values(row).run()),

  /** The JSON reports of a pipeline's latest audits, newest first. */
  recentAudits: (pipeline: string, limit: number) =>
    read("looking up audits", (db) =>
      db.select({ report: schema.audits.report }).from(schema.audits)
        .where(eq(schema.audits.pipeline, pipeline)).orderBy(desc(schema.audits.startedAt)).limit(limit).all()
        .map((row) => row.report))
})
