/**
 * An audit report for the terminal: one status line per part, then every failure and warning, the
 * re-executions with what differed, and what changed in the environment.
 */
import type { AuditReport, FileDifference, Reexecution } from "../domain/Audit.ts"
import { formatBytes, formatMs } from "../format.ts"

const short = (hash: string | null) => (hash === null ? "(none)" : hash.slice(0, 12))

const describeFile = (f: FileDifference): string => {
  const name = f.path === "" ? "(the file)" : f.path
  switch (f.change) {
    case "differs":
      return `${name} differs from byte ${f.firstDifference ?? "?"} (stored ${formatBytes(f.storedSize ?? 0)}, ` +
        `rebuilt ${formatBytes(f.rebuiltSize ?? 0)})`
    case "missing":
      return `${name} is in the store but was not rebuilt`
    case "extra":
      return `${name} was rebuilt but is not in the store`
  }
}

const describeReexecution = (r: Reexecution): ReadonlyArray<string> => {
  const timing = r.durationMs === null
    ? ""
    : ` in ${formatMs(r.durationMs)}${
      r.recordedDurationMs === null ? "" : ` (recorded ${formatMs(r.recordedDurationMs)})`
    }`
  const label = {
    reproduced: r.reproducibility === "bitwise" ? "reproduced bitwise" : "reproduced within tolerance",
    differs: "DIFFERS",
    failed: "FAILED",
    skipped: "skipped"
  }[r.status]
  const lines = [`  ${label.padEnd(27)} ${r.stage} [${r.execution.slice(0, 8)}, ${r.selectedBy}]${timing}`]
  if (r.reason !== null) lines.push(`      ${r.reason}`)
  for (const output of r.outputs) {
    if (output.equal && output.files.length === 0) continue
    const verdict = output.equal ? "matches its record" : "differs from its record"
    lines.push(
      `      output ${output.name} ${verdict} (recorded ${short(output.recordedHash)}, rebuilt ${
        short(output.rebuiltHash)
      }, stored ${short(output.storedHash)})`
    )
    for (const file of output.files.slice(0, 10)) lines.push(`        ${describeFile(file)}`)
    if (output.files.length > 10) lines.push(`        ... and ${output.files.length - 10} more files`)
  }
  for (const m of r.metrics) {
    if (m.ok && r.status === "reproduced") continue
    lines.push(
      `      metric ${m.name}: recorded ${m.recorded ?? "-"}, rebuilt ${m.rebuilt ?? "-"}, ` +
        `difference ${m.difference ?? "-"} (bound ${m.bound})${m.ok ? "" : " OUT OF BOUNDS"}`
    )
  }
  if (r.rebuiltInputs.length > 0) lines.push(`      rebuilt inputs first: ${r.rebuiltInputs.join(", ")}`)
  if (r.restored.length > 0) lines.push(`      restored into the store: ${r.restored.join(", ")}`)
  return lines
}

export const formatAudit = (report: AuditReport): string => {
  const t = report.target
  const lines: Array<string> = []
  lines.push(
    `audit of ${t.kind} ${t.name}${t.preset ? ` (preset ${t.preset})` : ""} in ${report.workspace}: ${
      report.status === "passed" ? "passed" : "FAILED"
    } (${formatMs(report.durationMs)})`
  )
  const by = (check: string) => report.findings.filter((f) => f.check === check)
  const tally = (check: string) => {
    const found = by(check)
    const fails = found.filter((f) => f.severity === "fail").length
    const warns = found.filter((f) => f.severity === "warn").length
    return fails + warns === 0 ? "ok" : [fails > 0 ? `${fails} failed` : "", warns > 0 ? `${warns} warnings` : ""]
      .filter((s) => s !== "").join(", ")
  }
  const s = report.summary
  lines.push(
    `  integrity     ${s.artifacts} artifacts of ${s.executions} executions, ${formatBytes(s.bytesHashed)} read${
      report.quick ? " (quick: stat cache trusted)" : ""
    }: ${tally("integrity")}`
  )
  lines.push(`  completeness  ${tally("completeness")}`)
  lines.push(`  lineage       ${tally("lineage")}`)
  lines.push(
    `  drift         ${
      tally("drift") === "ok" ? "none: the current definitions reuse every execution" : tally("drift")
    }`
  )
  const results = report.reexecution.results
  if (results.length === 0) {
    lines.push("  re-execution  none selected (--stages, --sample N, --all or --restore)")
  } else {
    const count = (status: string) => results.filter((r) => r.status === status).length
    lines.push(
      `  re-execution  ${results.length} executions: ${count("reproduced")} reproduced, ${count("differs")} differ, ` +
        `${count("failed")} failed, ${count("skipped")} skipped (seed ${report.reexecution.seed})`
    )
  }
  const changed = report.environment.recorded.filter((e) => e.differences.length > 0)
  const workersChanged = report.environment.workers.filter((w) => w.changed)
  lines.push(
    `  environment   ${
      changed.length === 0 && workersChanged.length === 0
        ? "same as now"
        : `${changed.length} of ${report.environment.recorded.length} recorded environments differ from now` +
          (workersChanged.length > 0 ? `; ${workersChanged.length} worker binaries changed` : "")
    }`
  )

  const serious = report.findings.filter((f) => f.severity !== "info")
  if (serious.length > 0) {
    lines.push("", "findings:")
    for (const f of serious.slice(0, 50)) {
      lines.push(`  ${f.severity === "fail" ? "FAIL" : "warn"} ${f.check}: ${f.message}`)
    }
    if (serious.length > 50) lines.push(`  ... and ${serious.length - 50} more (--json lists them all)`)
  }
  const notAudited = report.findings.filter((f) => f.code === "upstream-unresolved").length
  if (notAudited > 0) lines.push(`  (${notAudited} stages downstream of those were not audited)`)
  if (results.length > 0) {
    lines.push("", "re-executions:")
    for (const r of results) lines.push(...describeReexecution(r))
  }
  if (changed.length > 0 || workersChanged.length > 0) {
    lines.push("", "environment (recorded -> now):")
    for (const e of changed) {
      lines.push(
        `  ${e.executions} executions (${e.stages.join(", ")}${e.executions > e.stages.length ? ", ..." : ""}):`
      )
      for (const d of e.differences) lines.push(`    ${d.field}: ${d.recorded ?? "-"} -> ${d.current ?? "-"}`)
    }
    for (const w of workersChanged) {
      lines.push(
        `  worker binary ${w.path} (${w.executions} executions): ${short(w.recordedHash)} -> ${short(w.currentHash)}`
      )
    }
  }
  if (report.notes.length > 0) lines.push("", ...report.notes.map((n) => `note: ${n}`))
  return lines.join("\n")
}
