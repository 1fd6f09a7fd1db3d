/**
 * Integrity: every recorded artifact still has its recorded content hash. A full audit reads every
 * byte; a quick one trusts the stat cache for files whose (device, inode, size, mtime) are unchanged.
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { Finding } from "../domain/Audit.ts"
import { StoreError } from "../domain/Errors.ts"
import type { ArtifactRow } from "../lineage/Lineage.ts"
import { ContentHasher } from "../store/ContentHasher.ts"
import type { Manifest } from "./Manifest.ts"
import { readManifest } from "./Manifest.ts"
import type { Records } from "./Records.ts"

export type ArtifactState = "intact" | "modified" | "missing" | "collected"

export interface IntegrityResult {
  readonly states: ReadonlyMap<string, ArtifactState>
  /** The hash on disk now, by artifact id (absent when missing or collected). */
  readonly currentHashes: ReadonlyMap<string, string>
  /** Per-file manifests read by a full audit, by absolute path. */
  readonly manifests: ReadonlyMap<string, Manifest>
  readonly findings: ReadonlyArray<Finding>
  readonly bytesHashed: number
}

const short = (hash: string) => hash.slice(0, 12)

/** Files of a directory artifact written after the artifact was recorded: where a change most likely is. */
const changedAfter = (dir: string, since: number): ReadonlyArray<string> => {
  const out: Array<string> = []
  const walk = (abs: string, rel: string) => {
    for (const entry of fs.readdirSync(abs, { withFileTypes: true })) {
      const childAbs = path.join(abs, entry.name)
      const childRel = rel === "" ? entry.name : `${rel}/${entry.name}`
      if (entry.isDirectory()) walk(childAbs, childRel)
      else if (fs.statSync(childAbs).mtimeMs > since) out.push(childRel)
    }
  }
  try {
    walk(dir, "")
  } catch {
    return []
  }
  return out.sort()
}

const consumersNote = (records: Records, artifact: ArtifactRow): string => {
  const consumers = records.consumersByArtifact.get(artifact.id) ?? []
  if (consumers.length === 0) return ""
  const asWorker = consumers.filter((c) => c.name === "worker").length
  if (asWorker === consumers.length) return `; it is the worker binary of ${asWorker} execution(s)`
  return `; consumed by ${consumers.length} execution(s)`
}

export const checkIntegrity = (
  artifacts: ReadonlyArray<ArtifactRow>,
  records: Records,
  options: { readonly root: string; readonly quick: boolean }
) =>
  Effect.gen(function*() {
    const hasher = yield* ContentHasher
    const states = new Map<string, ArtifactState>()
    const currentHashes = new Map<string, string>()
    const manifests = new Map<string, Manifest>()
    const findings: Array<Finding> = []
    // Rows can share a path (a stage re-executed with the same fingerprint): each path is read once.
    const byPath = new Map<string, { kind: "file" | "dir"; hash: string } | undefined>()
    const before = hasher.cache.bytesHashed
    let bytesRead = 0

    const hashOf = (abs: string) =>
      Effect.gen(function*() {
        if (byPath.has(abs)) return byPath.get(abs)
        let content: { kind: "file" | "dir"; hash: string } | undefined
        if (options.quick) {
          content = yield* hasher.hash(abs)
        } else {
          const manifest = yield* Effect.try({
            try: () => readManifest(abs),
            catch: (cause) => new StoreError({ path: abs, reason: `cannot read: ${String(cause)}` })
          })
          if (manifest !== undefined) {
            manifests.set(abs, manifest)
            bytesRead += manifest.size
          }
          content = manifest
        }
        byPath.set(abs, content)
        return content
      })

    for (const artifact of artifacts) {
      const stage = records.executions.get(artifact.executionId)?.stageId ?? "(unknown stage)"
      const ref = { id: artifact.id, name: artifact.name, path: artifact.path }
      const base = { stage, execution: artifact.executionId, artifact: ref }
      if (artifact.collectedAt !== null) {
        states.set(artifact.id, "collected")
        findings.push({
          ...base,
          check: "integrity",
          severity: "warn",
          code: "collected",
          message: `${stage} output ${artifact.name} was collected on ${
            new Date(artifact.collectedAt).toISOString()
          }; audit --restore rebuilds it by re-execution`,
          files: []
        })
        continue
      }
      const abs = path.resolve(options.root, artifact.path)
      const content = yield* hashOf(abs)
      if (content === undefined) {
        states.set(artifact.id, "missing")
        findings.push({
          ...base,
          check: "integrity",
          severity: "fail",
          code: "missing",
          message: `${stage} output ${artifact.name} is missing: ${artifact.path}${consumersNote(records, artifact)}`,
          files: []
        })
        continue
      }
      currentHashes.set(artifact.id, content.hash)
      if (content.hash === artifact.hash && content.kind === artifact.kind) {
        states.set(artifact.id, "intact")
        continue
      }
      states.set(artifact.id, "modified")
      const files = content.kind === "dir" ? changedAfter(abs, artifact.createdAt) : []
      findings.push({
        ...base,
        check: "integrity",
        severity: "fail",
        code: "modified",
        message: `${stage} output ${artifact.name} was modified: ${artifact.path} (recorded ${short(artifact.hash)}, ` +
          `now ${short(content.hash)})${consumersNote(records, artifact)}` +
          (files.length > 0 ? `; changed after it was recorded: ${files.slice(0, 5).join(", ")}` : ""),
        files
      })
    }
    return {
      states,
      currentHashes,
      manifests,
      findings,
      bytesHashed: options.quick ? hasher.cache.bytesHashed - before : bytesRead
    } satisfies IntegrityResult
  })
