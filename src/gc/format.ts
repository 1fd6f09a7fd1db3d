/**
 * Garbage collection and pins for the terminal.
 */
import type { GcPlan, Pin } from "../domain/Gc.ts"
import { formatBytes } from "../format.ts"

const what = {
  outputs: "outputs of",
  artifact: "output of",
  orphan: "not recorded by any execution",
  trash: "leftover trash of an interrupted run"
} as const

export const formatGc = (plan: GcPlan): string => {
  const lines: Array<string> = []
  for (const w of plan.warnings) lines.push(`warning: ${w}`)
  if (plan.recovered > 0) lines.push(`finished an interrupted gc (${plan.recovered} paths)`)
  if (plan.units.length === 0 && plan.markOnly.length === 0) {
    lines.push("nothing to collect")
  } else {
    for (const unit of plan.units) {
      const owner = unit.stage === null
        ? what[unit.kind]
        : `${what[unit.kind]} ${unit.stage}${unit.execution ? ` [${unit.execution.slice(0, 8)}]` : ""}`
      const shared = unit.sharedBytes > 0 ? ` (+${formatBytes(unit.sharedBytes)} hard-linked elsewhere)` : ""
      const names = unit.kind === "artifact" ? ` ${unit.artifacts.map((a) => a.name).join(", ")}` : ""
      lines.push(`${formatBytes(unit.bytes).padStart(10)}  ${unit.path}  ${owner}${names}${shared}`)
    }
    if (plan.markOnly.length > 0) {
      lines.push(
        `${plan.markOnly.length} artifact record(s) ${
          plan.dryRun ? "would be" : "were"
        } marked collected with nothing to delete:`
      )
      for (const m of plan.markOnly.slice(0, 10)) lines.push(`  ${m.stage} ${m.name} (${m.path}): ${m.why}`)
      if (plan.markOnly.length > 10) lines.push(`  ... and ${plan.markOnly.length - 10} more`)
    }
  }
  lines.push(
    `kept: ${plan.kept.artifacts} artifacts, ${formatBytes(plan.kept.bytes)}` +
      (plan.kept.reasons.length > 0 ? "; by what keeps them:" : "")
  )
  for (const r of plan.kept.reasons.slice(0, 10)) {
    lines.push(`  ${formatBytes(r.bytes).padStart(10)}  ${r.artifacts} artifacts: ${r.reason}`)
  }
  if (plan.kept.reasons.length > 10) lines.push(`  ... and ${plan.kept.reasons.length - 10} more reasons`)
  const shared = plan.sharedBytes > 0 ? ` (+${formatBytes(plan.sharedBytes)} hard-linked, not freed)` : ""
  lines.push(
    plan.dryRun
      ? `would free ${
        formatBytes(plan.freedBytes)
      } in ${plan.units.length} paths${shared}; dry run: pass --yes to delete`
      : `freed ${formatBytes(plan.freedBytes)} in ${plan.units.length} paths${shared}`
  )
  return lines.join("\n")
}

export const formatPins = (pins: ReadonlyArray<Pin>): string =>
  pins.length === 0 ?
    "no pins" :
    pins.map((p) =>
      `${p.id.slice(0, 8)}  ${p.stage}  ${
        p.artifact ? `artifact ${p.artifact.name} (${p.artifact.path})` : `execution ${p.execution?.slice(0, 8)}`
      }${p.note ? `  "${p.note}"` : ""}  pinned ${new Date(p.createdAt).toISOString()} as ${p.target}`
    ).join("\n")
