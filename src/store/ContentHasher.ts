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

/** sha256File without blocking the event loop for the whole file: one chunk per turn. */
export const sha256FileAsync = async (file: string): Promise<string> => {
  const hash = crypto.createHash("sha256")
  const buffer = Buffer.allocUnsafe(CHUNK)
  const handle = await fs.promises.open(file, "r")
  try {
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, CHUNK, null)
      if (bytesRead === 0) break
      hash.update(bytesRead === CHUNK ? buffer : buffer.subarray(0, bytesRead))
    }
  } finally {
    await handle.close()
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
  /** Paths given to `prehash` that have not moved yet: the only cached rows a later `moved` can concern. */
  private readonly announced = new Set<string>()
  /** Bytes actually read from disk since creation: status of an unchanged workspace must read none. */
  bytesHashed = 0

  constructor(rows: Iterable<FileStatRow>) {
    this.rows = new Map(Array.from(rows, (r) => [r.path, r]))
  }

  /**
   * `reread`: hash the bytes even when the stat matches. An unchanged stat proves nothing against bit
   * rot or a file rewritten with its size and mtime restored; executables and `run --verify` need
   * the content.
   */
  hashFile(file: string, st: Stat, reread = false): string {
    const cached = this.rows.get(file)
    if (!reread && cached && sameStat(cached, st)) return cached.hash
    const hash = sha256File(file)
    this.remember(file, st, hash)
    return hash
  }

  /** Keeps a freshly computed hash, unless the file changed while it was read. */
  private remember(file: string, st: Stat, hash: string): void {
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
  }

  /**
   * Hashes the files under `target` the cache does not know yet, a chunk per event-loop turn, so a
   * stage's finished parts (a checkpoint, while training goes on) are hashed while it still runs
   * and the hash of its outputs at the end finds them cached. Best effort: errors are left to that hash.
   */
  async prehash(target: string): Promise<void> {
    this.announced.add(target)
    const files: Array<string> = []
    const walk = (abs: string) => {
      const st = fs.statSync(abs)
      if (!st.isDirectory()) return files.push(abs)
      for (const entry of fs.readdirSync(abs)) walk(path.join(abs, entry))
    }
    try {
      walk(target)
      for (const file of files) {
        const st = fs.statSync(file, { bigint: true })
        const cached = this.rows.get(file)
        if (cached && sameStat(cached, st)) continue
        this.remember(file, st, await sha256FileAsync(file))
      }
    } catch {
      // The final hash of the outputs reports what is wrong.
    }
  }

  /**
   * `from` was renamed to `to` (staging -> artifacts): its files keep device, inode, size and mtime,
   * so their cached hashes stay valid under the new paths. Only announced (prehashed) paths under
   * `from` have rows to carry, so promoting a stage that announced nothing costs nothing.
   */
  moved(from: string, to: string): void {
    const carry = (oldPath: string, newPath: string) => {
      const row = this.rows.get(oldPath)
      if (row === undefined) return
      const moved = { ...row, path: newPath }
      this.rows.delete(oldPath)
      this.dirty.delete(oldPath)
      this.rows.set(newPath, moved)
      this.dirty.set(newPath, moved)
    }
    const walk = (oldPath: string, newPath: string) => {
      if (!fs.statSync(newPath).isDirectory()) return carry(oldPath, newPath)
      for (const entry of fs.readdirSync(newPath)) walk(path.join(oldPath, entry), path.join(newPath, entry))
    }
    for (const target of [...this.announced]) {
      if (target !== from && !target.startsWith(from + path.sep)) continue
      this.announced.delete(target)
      const moved = to + target.slice(from.length)
      if (fs.existsSync(moved)) walk(target, moved)
    }
  }

  /** Files hashed since the last call, to persist. */
  takeDirty(): ReadonlyArray<FileStatRow> {
    const rows = [...this.dirty.values()]
    this.dirty = new Map()
    return rows
  }

  /** A file's or directory's content hash; undefined when it does not exist. */
  hashPath(target: string, reread = false): ContentHash | undefined {
    let st: Stat
    try {
      st = fs.statSync(target, { bigint: true })
    } catch {
      return undefined
    }
    if (st.isDirectory()) return this.hashDir(target, reread)
    return { kind: "file", hash: this.hashFile(target, st, reread), size: Number(st.size) }
  }

  private hashDir(dir: string, reread: boolean): ContentHash {
    return hashDirectory(dir, (abs) => {
      const st = fs.statSync(abs, { bigint: true })
      return { hash: this.hashFile(abs, st, reread), size: Number(st.size) }
    })
  }
}

/**
 * The content hash of a directory: sha256 over its entries in sorted order, `d <rel>` for a
 * directory (so empty ones count) and `f <rel> <file hash>` for a file, with `/` between path parts.
 * The store and the audit's cache-free manifest both hash through this, so their hashes compare.
 * `fileHash` is called once per file, in that order.
 */
export const hashDirectory = (
  dir: string,
  fileHash: (abs: string, rel: string) => { readonly hash: string; readonly size: number }
): ContentHash => {
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
        const file = fileHash(childAbs, childRel)
        digest.update(`f ${childRel} ${file.hash}\n`)
        size += file.size
      }
    }
  }
  walk(dir, "")
  return { kind: "dir", hash: digest.digest("hex"), size }
}

/** The stat cache, loaded from and saved to the lineage database. */
export class ContentHasher extends Effect.Service<ContentHasher>()("flame-pipe/ContentHasher", {
  effect: Effect.gen(function*() {
    const lineage = yield* Lineage
    const cache = new StatCache(yield* lineage.fileStats())
    const once = new Map<string, ContentHash | undefined>()
    const executables = new Map<string, ContentHash | undefined>()
    const hashSync = (target: string, reread = false): ContentHash | undefined => {
      try {
        return cache.hashPath(target, reread)
      } catch (cause) {
        throw new StoreError({ path: target, reason: `cannot hash: ${String(cause)}` })
      }
    }
    /**
     * For paths every stage of a run shares (sources): stat and hash once per run; with `reread`
     * (run --verify) their bytes are read whatever the stat cache says.
     * Workspace artifacts always go through `hash`, which notices a change made mid-run.
     * Throws a StoreError; for synchronous loops over many stages.
     */
    const hashOnceSync = (target: string, reread = false): ContentHash | undefined => {
      if (!once.has(target)) once.set(target, hashSync(target, reread))
      return once.get(target)
    }
    /**
     * A program a stage executes (the worker binary), hashed from its bytes once per process: it is
     * what runs, so a same-size copy with its mtime restored must not pass for the recorded one.
     * A worker is a few hundred KB to a few MB, a millisecond or two to read.
     */
    const hashExecutableSync = (target: string): ContentHash | undefined => {
      if (!executables.has(target)) executables.set(target, hashSync(target, true))
      return executables.get(target)
    }
    const attempt = <A>(f: () => A) =>
      Effect.try({
        try: f,
        catch: (cause) => cause instanceof StoreError ? cause : new StoreError({ path: "", reason: String(cause) })
      })
    const inFlight = new Map<string, Promise<void>>()
    return {
      cache,
      /** Starts hashing a finished part of a running stage's output in the background. */
      prehash: (target: string) => {
        const previous = inFlight.get(target) ?? Promise.resolve()
        const next = previous.then(() => cache.prehash(target))
        inFlight.set(target, next)
        void next.finally(() => {
          if (inFlight.get(target) === next) inFlight.delete(target)
        })
      },
      /** Waits for the background hashes of paths under `dir` (before the directory is moved). */
      settled: (dir: string) =>
        Effect.promise(() =>
          Promise.all([...inFlight].filter(([p]) => p === dir || p.startsWith(dir + path.sep)).map(([, done]) => done))
        ).pipe(Effect.asVoid),
      hashSync,
      hashOnceSync,
      hashExecutableSync,
      hashOnce: (target: string) => attempt(() => hashOnceSync(target)),
      hash: (target: string) => attempt(() => hashSync(target)),
      flush: Effect.suspend(() => lineage.putFileStats(cache.takeDirty()))
    }
  })
}) {}
