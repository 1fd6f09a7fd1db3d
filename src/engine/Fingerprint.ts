/**
 * A stage's fingerprint: everything that determines its outputs, hashed. Two executions with the
 * same fingerprint are interchangeable, which is what makes the cache sound.
 */
import { sha256Text } from "../store/ContentHasher.ts"

/** JSON with object keys sorted at every level, so equal values always hash equally. */
export const canonicalJson = (value: unknown): string => JSON.stringify(sortKeys(value))

const sortKeys = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(sortKeys)
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {}
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key]
      if (v !== undefined) out[key] = sortKeys(v)
    }
    return out
  }
  return value
}

export interface FingerprintParts {
  readonly stageId: string
  readonly version: string
  readonly params: unknown
  /** Content hash of each consumed upstream output, by input name. */
  readonly inputs: Readonly<Record<string, string>>
  readonly workerHash: string | null
  /** Content hashes of external files the stage reads, by path. */
  readonly sources: Readonly<Record<string, string>>
}

export const fingerprint = (parts: FingerprintParts): string =>
  sha256Text(
    canonicalJson({
      id: parts.stageId,
      version: parts.version,
      params: parts.params,
      inputs: parts.inputs,
      worker: parts.workerHash,
      // Omitted when empty so stages without external sources keep their fingerprints.
      ...(Object.keys(parts.sources).length > 0 ? { sources: parts.sources } : {})
    })
  )

/** An execution's fingerprint and the parts its lineage row records, JSON columns parsed. */
export interface RecordedExecution extends Omit<FingerprintParts, "inputs" | "sources"> {
  readonly fingerprint: string
  readonly inputHashes: FingerprintParts["inputs"]
  readonly sourceHashes: FingerprintParts["sources"]
}

/**
 * Does a recorded execution still hash to its fingerprint? A row edited by hand (or by anything but
 * the engine) keeps its old fingerprint while its params or inputs say something else; serving such
 * a row from the cache would hand out outputs that nothing recorded explains.
 */
export const recordMatchesFingerprint = (row: RecordedExecution): boolean =>
  fingerprint({ ...row, inputs: row.inputHashes, sources: row.sourceHashes }) === row.fingerprint

/** Flattens params to dotted keys so a change can be named precisely (`model.hiddenSize: 64 -> 128`). */
export const flattenParams = (value: unknown, prefix = "", out = new Map<string, string>()): Map<string, string> => {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    for (const [key, v] of Object.entries(value)) flattenParams(v, prefix === "" ? key : `${prefix}.${key}`, out)
  } else if (prefix !== "") {
    out.set(prefix, canonicalJson(value))
  }
  return out
}

export interface ParamChange {
  readonly key: string
  readonly from: string | undefined
  readonly to: string | undefined
}

export const diffParams = (before: unknown, after: unknown): ReadonlyArray<ParamChange> => {
  const a = flattenParams(before)
  const b = flattenParams(after)
  const changes: Array<ParamChange> = []
  for (const [key, to] of b) if (a.get(key) !== to) changes.push({ key, from: a.get(key), to })
  for (const [key, from] of a) if (!b.has(key)) changes.push({ key, from, to: undefined })
  return changes
}
