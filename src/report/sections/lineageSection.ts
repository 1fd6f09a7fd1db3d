/**
 * Lineage: which execution (and which of its outputs) produced each figure and table of the sections
 * before it, then every execution the report covers with its environment, and what is missing.
 */
import type { SectionBuilder, StageRecord, Table } from "../model.ts"
import { short } from "./chart.ts"

const when = (ms: number | null) => (ms === null ? "-" : new Date(ms).toISOString().replace(".000Z", "Z"))
const duration = (ms: number | null) => (ms === null ? "-" : ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`)

export const lineageSection: SectionBuilder = {
  id: "lineage",
  build: (data, previous) => {
    const byStage = new Map<string, StageRecord>(data.records.map((r) => [r.stageId, r]))
    const items = previous.flatMap((s) => [...s.figures, ...s.tables].map((item) => ({ section: s.title, item })))
    const stale = data.records.filter((r) => r.stale !== undefined).length
    const produced: Table = {
      id: "lineage-figures",
      title: "What produced each figure and table",
      caption:
        "Execution ids are lineage ids: `flame-pipe show <id>` and `flame-pipe lineage <id>` give the full record.",
      columns: [
        "section",
        "figure / table",
        "stage",
        "execution",
        "run",
        "finished",
        "outputs (sha256 prefix)",
        "inputs"
      ],
      rows: items.flatMap(({ item, section }) =>
        [...new Set(item.sources)].map((stageId) => {
          const r = byStage.get(stageId)
          return [
            section,
            item.title,
            stageId,
            short(r?.execution.id),
            short(r?.execution.runId),
            when(r?.execution.endedAt ?? null),
            r ? r.outputs.map((o) => `${o.name} ${short(o.hash, 12)}`).join(", ") : "-",
            r ?
              r.inputs.map((i) => `${i.producerStage}:${i.name} ${short(i.hash, 12)}`).slice(0, 6).join(", ") +
              (r.inputs.length > 6 ? `, ... (${r.inputs.length} inputs)` : "") :
              "-"
          ]
        })
      ),
      sources: []
    }
    const executions: Table = {
      id: "lineage-executions",
      title: "Executions covered",
      caption: "A stale stage is reported from its latest successful execution; `current` says why it is not current.",
      columns: ["stage", "kind", "execution", "current", "started", "duration", "worker", "commit", "host"],
      rows: data.records.map((r) => [
        r.stageId,
        r.kind,
        short(r.execution.id),
        r.stale === undefined ? "yes" : `no: ${r.stale}`,
        when(r.execution.startedAt),
        duration(r.execution.durationMs),
        short(r.execution.workerHash, 12),
        r.environment?.gitCommit
          ? `${short(r.environment.gitCommit, 10)}${r.environment.gitDirty ? " (dirty)" : ""}`
          : "-",
        r.execution.host
      ]),
      sources: []
    }
    const missing: Table = {
      id: "lineage-missing",
      title: "Stages with nothing current to report",
      columns: ["stage", "kind", "why"],
      rows: data.missing.map((m) => [m.stageId, m.kind, m.reason]),
      sources: []
    }
    return {
      id: "lineage",
      title: "Lineage",
      intro:
        `Pipeline ${data.pipeline}${data.preset ? ` (preset ${data.preset})` : ""}, workspace ${data.workspace}; ` +
        `${data.records.length} execution(s)` +
        (stale > 0 ? `, ${stale} of them from stages that are stale now (their latest successful execution).` : "."),
      figures: [],
      tables: data.missing.length > 0 ? [produced, executions, missing] : [produced, executions]
    }
  }
}
