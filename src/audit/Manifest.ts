/**
 * Per-file content of an artifact, read from disk without the stat cache: what a full audit trusts.
 * The artifact's hash is computed exactly as the store's (sorted relative paths with their file
 * hashes), so it compares with what lineage recorded; the per-file entries say *which* file differs.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import type { FileDifference } from "../domain/Audit.ts"
import { hashDirectory, sha256File } from "../store/ContentHasher.ts"

export interface ManifestFile {
  readonly hash: string
  readonly size: number
  readonly mtimeMs: number
}

export interface Manifest {
  readonly kind: "file" | "dir"
  readonly hash: string
  readonly size: number
  /** By path relative to the artifact ("" for a file artifact). */
  readonly files: ReadonlyMap<string, ManifestFile>
}

/** undefined when nothing is there. */
export const readManifest = (target: string): Manifest | undefined => {
  let st: fs.Stats
  try {
    st = fs.statSync(target)
  } catch {
    return undefined
  }
  if (!st.isDirectory()) {
    const hash = sha256File(target)
    return {
      kind: "file",
      hash,
      size: st.size,
      files: new Map([["", { hash, size: st.size, mtimeMs: st.mtimeMs }]])
    }
  }
  const files = new Map<string, ManifestFile>()
  const { hash, size } = hashDirectory(target, (abs, rel) => {
    const fst = fs.statSync(abs)
    const file = { hash: sha256File(abs), size: fst.size, mtimeMs: fst.mtimeMs }
    files.set(rel, file)
    return file
  })
  return { kind: "dir", hash, size, files }
}

/** Offset of the first byte where two files differ; the shorter length when one is a prefix of the other. */
export const firstDifference = (a: string, b: string): number | null => {
  const chunk = 1 << 20
  const ba = Buffer.allocUnsafe(chunk)
  const bb = Buffer.allocUnsafe(chunk)
  const fa = fs.openSync(a, "r")
  const fb = fs.openSync(b, "r")
  try {
    let offset = 0
    for (;;) {
      const na = fs.readSync(fa, ba, 0, chunk, offset)
      const nb = fs.readSync(fb, bb, 0, chunk, offset)
      const n = Math.min(na, nb)
      for (let i = 0; i < n; i++) if (ba[i] !== bb[i]) return offset + i
      if (na !== nb) return offset + n
      if (na === 0) return null
      offset += n
    }
  } finally {
    fs.closeSync(fa)
    fs.closeSync(fb)
  }
}

/** File by file: what differs between a stored artifact and a rebuilt one. */
export const diffManifests = (
  stored: { readonly root: string; readonly manifest: Manifest },
  rebuilt: { readonly root: string; readonly manifest: Manifest }
): ReadonlyArray<FileDifference> => {
  const out: Array<FileDifference> = []
  const abs = (root: string, rel: string) => (rel === "" ? root : path.join(root, rel))
  const names = [...new Set([...stored.manifest.files.keys(), ...rebuilt.manifest.files.keys()])].sort()
  for (const name of names) {
    const s = stored.manifest.files.get(name)
    const r = rebuilt.manifest.files.get(name)
    if (s !== undefined && r !== undefined) {
      if (s.hash === r.hash) continue
      out.push({
        path: name,
        change: "differs",
        storedSize: s.size,
        rebuiltSize: r.size,
        firstDifference: firstDifference(abs(stored.root, name), abs(rebuilt.root, name))
      })
    } else if (s !== undefined) {
      out.push({ path: name, change: "missing", storedSize: s.size, rebuiltSize: null, firstDifference: null })
    } else if (r !== undefined) {
      out.push({ path: name, change: "extra", storedSize: null, rebuiltSize: r.size, firstDifference: null })
    }
  }
  return out
}
