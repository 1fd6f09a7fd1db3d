/**
 * Comparing a re-execution with its record: outputs by content hash (file by file when they differ),
 * and for stages of the tolerance class, named numbers of the typed result within their bounds.
 */
import type { MetricComparison } from "../domain/Audit.ts"
import type { Reproducibility } from "../Stage.ts"
import type { AnyStageDefinition } from "../Stage.ts"

export const reproducibilityOf = (definition: AnyStageDefinition, params: unknown): Reproducibility => {
  const declared = definition.reproducibility
  if (declared === undefined) return { _tag: "bitwise" }
  return typeof declared === "function" ? declared(params) : declared
}

/** Every number (or null) in a JSON value, by dotted path. */
export const flattenNumbers = (
  value: unknown,
  prefix = "",
  out = new Map<string, number | null>()
): Map<string, number | null> => {
  if (typeof value === "number") {
    out.set(prefix, value)
  } else if (value === null) {
    if (prefix !== "") out.set(prefix, null)
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => flattenNumbers(v, prefix === "" ? String(i) : `${prefix}.${i}`, out))
  } else if (typeof value === "object") {
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      flattenNumbers(v, prefix === "" ? k : `${prefix}.${k}`, out)
    }
  }
  return out
}

/** A metric name matches a path segment by segment; `*` matches any one segment. */
export const matchesMetric = (pattern: string, key: string): boolean => {
  const p = pattern.split(".")
  const k = key.split(".")
  return p.length === k.length && p.every((segment, i) => segment === "*" || segment === k[i])
}

const within = (a: number | null, b: number | null, bound: number): { ok: boolean; difference: number | null } => {
  if (a === null || b === null) return { ok: a === b, difference: null }
  if (Number.isNaN(a) || Number.isNaN(b)) return { ok: Number.isNaN(a) && Number.isNaN(b), difference: null }
  const difference = Math.abs(a - b)
  // Inclusive, up to the rounding of the subtraction itself (0.52 - 0.5 is a hair above 0.02).
  const slack = 4 * Number.EPSILON * Math.max(1, Math.abs(a), Math.abs(b))
  return { ok: difference <= bound + slack, difference }
}

/** One comparison per result number each metric name matches; a name that matches nothing fails. */
export const compareMetrics = (
  metrics: Readonly<Record<string, number>>,
  recorded: unknown,
  rebuilt: unknown
): ReadonlyArray<MetricComparison> => {
  const a = flattenNumbers(recorded)
  const b = flattenNumbers(rebuilt)
  const keys = [...new Set([...a.keys(), ...b.keys()])].sort()
  const out: Array<MetricComparison> = []
  for (const [pattern, bound] of Object.entries(metrics)) {
    const matching = keys.filter((k) => matchesMetric(pattern, k))
    if (matching.length === 0) {
      out.push({ name: pattern, recorded: null, rebuilt: null, difference: null, bound, ok: false })
      continue
    }
    for (const key of matching) {
      const r = a.has(key) ? a.get(key)! : null
      const n = b.has(key) ? b.get(key)! : null
      const missing = !a.has(key) || !b.has(key)
      const { difference, ok } = within(r, n, bound)
      out.push({ name: key, recorded: r, rebuilt: n, difference, bound, ok: ok && !missing })
    }
  }
  return out
}
