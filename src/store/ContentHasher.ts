/**
 * Content hashes of files and directories, behind a stat cache: a file whose (device, inode, size,
 * mtime_ns) did not change since it was last hashed is not read again, so checking multi-GB
 * checkpoints costs a stat() each.
 */
import { Effect } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { StoreError } from "../domain/Errors.ts"
import type { FileStatRow } from "../lineage/Lineage.ts"
import { Lineage } from "../lineage/Lineage.ts"

export interface ContentHash {
  readonly kind: "file" | "dir"
  readonly hash: string
  readonly size: number
}

const CHUNK = 8 * 1024 * 1024

/** sha256 of a file's bytes, read in large chunks (the cost is the disk's, not the hash's). */
export const sha256File = (file: string): string => {
  const hash = crypto.createHash("sha256")
  const buffer = Buffer.allocUnsafe(CHUNK)
  const fd = fs.openSync(file, "r")
  try {
    for (;;) {
      const n = fs.readSync(fd, buffer, 0, CHUNK, null)
      if (n === 0) break
      hash.update(n === CHUNK ? buffer : buffer.subarray(0, n))
    }
  } finally {
    fs.closeSync(fd)
  }
  return hash.digest("hex")
}

export const sha256Text = (text: string): string => crypto.createHash("sha256").update(text).digest("hex")

type Stat = fs.BigIntStats

const sameStat = (row: FileStatRow, st: Stat) =>
  row.size === Number(st.size) && row.mtimeNs === String(st.mtimeNs) && row.ino === String(st.ino) &&
  row.dev === String(st.dev)

/** The cache logic, independent of where rows are persisted. */
export class StatCache {
  private readonly rows: Map<string, FileStatRow>
  private dirty = new Map<string, FileStatRow>()
  /** Bytes actually read from disk since creation: status of an unchanged workspace must read none. */
  bytesHashed = 0

  constructor(rows: Iterable<FileStatRow>) {
    this.rows = new Map(Array.from(rows, (r) => [r.path, r]))
  }

  hashFile(file: string, st: Stat): string {
    const cached = this.rows.get(file)
    if (cached && sameStat(cached, st)) return cached.hash
    const hash = sha256File(file)
    this.bytesHashed += Number(st.size)
    // A file modified while we read it would pair a new mtime with old bytes; re-stat and keep only a stable pair.
    const after = fs.statSync(file, { bigint: true })
    if (after.mtimeNs === st.mtimeNs && after.size === st.size) {
      const row: FileStatRow = {
        path: file,
        dev: String(st.dev),
        ino: String(st.ino),
        size: Number(st.size),
        mtimeNs: String(st.mtimeNs),
        hash
      }
      this.rows.set(file, row)
      this.dirty.set(file, row)
    }
    return hash
  }

  /** Files hashed since the last call, to persist. */
  takeDirty(): ReadonlyArray<FileStatRow> {
    const rows = [...this.dirty.values()]
    this.dirty = new Map()
    return rows
  }

  /** A file's or directory's content hash; undefined when it does not exist. */
  hashPath(target: string): ContentHash | undefined {
    let st: Stat
    try {
      st = fs.statSync(target, { bigint: true })
    } catch {
      return undefined
    }
    if (st.isDirectory()) return this.hashDir(target)
    return { kind: "file", hash: this.hashFile(target, st), size: Number(st.size) }
  }

  /** A directory hashes its sorted relative paths with their file hashes; empty directories count too. */
  private hashDir(dir: string): ContentHash {
    const digest = crypto.createHash("sha256")
    let size = 0
    const walk = (abs: string, rel: string) => {
      const entries = fs.readdirSync(abs, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))
      for (const entry of entries) {
        const childAbs = path.join(abs, entry.name)
        const childRel = rel === "" ? entry.name : `${rel}/${entry.name}`
        if (entry.isDirectory()) {
          digest.update(`d ${childRel}\n`)
          walk(childAbs, childRel)
        } else {
          const st = fs.statSync(childAbs, { bigint: true })
          digest.update(`f ${childRel} ${this.hashFile(childAbs, st)}\n`)
          size += Number(st.size)
        }
      }
    }
    walk(dir, "")
    return { kind: "dir", hash: digest.digest("hex"), size }
  }
}

/** The stat cache, loaded from and saved to the lineage database. */
export class ContentHasher extends Effect.Service<ContentHasher>()("flame-pipe/ContentHasher", {
  effect: Effect.gen(function*() {
    const lineage = yield* Lineage
    const cache = new StatCache(yield* lineage.fileStats())
    const once = new Map<string, ContentHash | undefined>()
    const hashSync = (target: string): ContentHash | undefined => {
      try {
        return cache.hashPath(target)
      } catch (cause) {
        throw new StoreError({ path: target, reason: `cannot hash: ${String(cause)}` })
      }
    }
    /**
     * For paths every stage of a run shares (the worker binary, sources): stat and hash once per run.
     * Workspace artifacts always go through `hash`, which notices a change made mid-run.
     * Throws a StoreError; for synchronous loops over many stages.
     */
    const hashOnceSync = (target: string): ContentHash | undefined => {
      if (!once.has(target)) once.set(target, hashSync(target))
      return once.get(target)
    }
    const attempt = <A>(f: () => A) =>
      Effect.try({
        try: f,
        catch: (cause) => cause instanceof StoreError ? cause : new StoreError({ path: "", reason: String(cause) })
      })
    return {
      cache,
      hashSync,
      hashOnceSync,
      hashOnce: (target: string) => attempt(() => hashOnceSync(target)),
      hash: (target: string) => attempt(() => hashSync(target)),
      flush: Effect.suspend(() => lineage.putFileStats(cache.takeDirty()))
    }
  })
}) {}
