/**
 * The HTML report's audit section: the latest recorded audit of the pipeline, passed in as
 * ReportData.extras.audit (its verdict, what failed, each re-execution and what it compared, and how
 * the environment differs), or nothing when the pipeline was never audited.
 */
import { Option, Schema } from "effect"
import { AuditReport } from "../domain/Audit.ts"
import { formatBytes } from "../format.ts"
import type { SectionBuilder, Table } from "../report/model.ts"

const when = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z")
const seconds = (ms: number | null) => (ms === null ? "-" : `${(ms / 1000).toFixed(1)} s`)

/** The key of ReportData.extras the audit travels under. */
export const auditExtra = "audit"

export const auditSection: SectionBuilder = {
  id: "audit",
  build: (data) => {
    const audit = Option.getOrUndefined(Schema.decodeUnknownOption(AuditReport)(data.extras?.[auditExtra]))
    if (audit === undefined) return undefined
    const s = audit.summary
    const verdict: Table = {
      id: "audit-summary",
      title: "Audit",
      caption: `flame-pipe audit ${audit.target.name}${audit.quick ? " --quick" : ""}, ${when(audit.startedAt)}. ` +
        "The workspace may have changed since; run the audit again to check it now.",
      columns: ["status", "executions", "artifacts", "bytes read", "failures", "warnings", "re-executed", "reproduced"],
      rows: [[
        audit.status,
        s.executions,
        s.artifacts,
        formatBytes(s.bytesHashed),
        s.failures,
        s.warnings,
        s.reexecuted,
        s.reproduced
      ]],
      sources: []
    }
    const findings: Table = {
      id: "audit-findings",
      title: "Audit findings",
      caption: "Integrity (recorded hash vs the bytes on disk), completeness and consistency of the records, drift.",
      columns: ["severity", "check", "stage", "execution", "artifact", "finding"],
      rows: audit.findings.filter((f) => f.severity !== "info").map((f) => [
        f.severity,
        f.check,
        f.stage,
        f.execution?.slice(0, 8) ?? "-",
        f.artifact?.path ?? "-",
        f.message
      ]),
      sources: []
    }
    const reexecutions: Table = {
      id: "audit-reexecutions",
      title: "Re-executions",
      caption:
        `Re-run in a scratch workspace from their recorded inputs and params (sample seed ${audit.reexecution.seed}); ` +
        "bitwise stages compare every output byte, tolerance stages named result values within their bounds.",
      columns: [
        "stage",
        "execution",
        "class",
        "selected",
        "status",
        "outputs equal",
        "metrics within bounds",
        "time",
        "recorded",
        "note"
      ],
      rows: audit.reexecution.results.map((r) => [
        r.stage,
        r.execution.slice(0, 8),
        r.reproducibility,
        r.selectedBy,
        r.status,
        r.outputs.length === 0 ? "-" : `${r.outputs.filter((o) => o.equal).length} / ${r.outputs.length}`,
        r.metrics.length === 0 ? "-" : `${r.metrics.filter((m) => m.ok).length} / ${r.metrics.length}`,
        seconds(r.durationMs),
        seconds(r.recordedDurationMs),
        r.reason ?? ""
      ]),
      sources: []
    }
    const environment: Table = {
      id: "audit-environment",
      title: "Environment then and now",
      caption: "What differs between where the audited executions ran and where the audit ran.",
      columns: ["executions", "field", "recorded", "at the audit"],
      rows: [
        ...audit.environment.recorded.flatMap((e) =>
          e.differences.map((d) => [e.executions, d.field, d.recorded ?? "-", d.current ?? "-"])
        ),
        ...audit.environment.workers.filter((w) => w.changed).map((w) => [
          w.executions,
          `worker binary ${w.path}`,
          w.recordedHash.slice(0, 12),
          w.currentHash?.slice(0, 12) ?? "(missing)"
        ])
      ],
      sources: []
    }
    return {
      id: "audit",
      title: "Reproducibility audit",
      intro: audit.status === "passed"
        ? `The latest audit passed: every recorded artifact it read had its recorded hash, the records were complete, ` +
          `and ${s.reproduced} of ${s.reexecuted} re-executions reproduced their outputs.`
        : `The latest audit FAILED with ${s.failures} failure(s); see the findings and re-executions below.`,
      figures: [],
      tables: [verdict, ...[findings, reexecutions, environment].filter((t) => t.rows.length > 0)]
    }
  }
}
