/** Row types of the lineage tables, as the service's queries return and take them. */
import type * as schema from "./schema.ts"

export type RunRow = typeof schema.runs.$inferSelect
export type NewRun = typeof schema.runs.$inferInsert
export type ExecutionRow = typeof schema.executions.$inferSelect
export type NewExecution = typeof schema.executions.$inferInsert
export type ArtifactRow = typeof schema.artifacts.$inferSelect
export type NewArtifact = typeof schema.artifacts.$inferInsert
export type EnvironmentRow = typeof schema.environments.$inferSelect
export type MetricRow = typeof schema.metrics.$inferInsert
export type FileStatRow = typeof schema.fileStats.$inferSelect
export type InputRow = typeof schema.executionInputs.$inferSelect
export type PinRow = typeof schema.pins.$inferSelect
export type AuditRow = typeof schema.audits.$inferInsert
export type SlurmJobRow = typeof schema.slurmJobs.$inferSelect
export type NewSlurmJob = typeof schema.slurmJobs.$inferInsert
export type SlurmJobUpdate = Partial<Omit<SlurmJobRow, "executionId" | "jobId" | "submission" | "script">>
export type { RunExecutorSettings } from "./schema.ts"
