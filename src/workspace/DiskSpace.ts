/**
 * A full disk. Every write can hit it, the lineage database's included, and a database on a full
 * disk cannot even record that a stage failed. So a run keeps a few MB of the disk reserved in a
 * file of its own and gives them up the moment the disk is full: the failure, the run's end and
 * the stat cache are recorded in that room, and the database stays consistent. The next run
 * recreates the reserve, or refuses to start when there is no room for it.
 */
import { Data } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"

/** What the records of a failing run need, with a wide margin (SQLite's WAL grows by pages). */
export const RESERVE_BYTES = 4 * 1024 * 1024

export const reservePath = (root: string): string => path.join(root, ".disk-reserve")

/** The disk holding the workspace is full: what was being written, where, and for which stage. */
export class DiskFull extends Data.TaggedError("DiskFull")<{
  readonly path: string
  readonly doing: string
  readonly stage?: string
  readonly freeBytes?: number
}> {
  override get message() {
    const free = this.freeBytes === undefined ? "" : ` (${formatFree(this.freeBytes)} free)`
    return `disk full${
      this.stage === undefined ? "" : ` in stage ${this.stage}`
    }: ${this.doing} ${this.path}${free}; ` +
      "free space on that disk and run again (everything recorded so far is kept)"
  }
}

const formatFree = (bytes: number): string =>
  bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MB` : `${Math.floor(bytes / 1024)} KB`

/** Bytes an unprivileged process may still write on the file system holding `dir`. */
export const freeBytes = (dir: string): number | undefined => {
  try {
    const stats = fs.statfsSync(dir)
    return stats.bavail * stats.bsize
  } catch {
    return undefined
  }
}

const FULL_TEXT = /ENOSPC|EDQUOT|no space left on device|disk quota exceeded|database or disk is full|SQLITE_FULL/i

/**
 * Does this failure come from a full disk? Errors arrive as Node's (code ENOSPC), SQLite's
 * (SQLITE_FULL), a stage's failure wrapping either in its reason, or a worker's log tail
 * ("No space left on device").
 */
export const isDiskFull = (error: unknown, depth = 0): boolean => {
  if (error === null || error === undefined || depth > 4) return false
  if (typeof error === "string") return FULL_TEXT.test(error)
  if (typeof error !== "object") return false
  const e = error as { code?: unknown; message?: unknown; reason?: unknown; logTail?: unknown; cause?: unknown }
  if (e.code === "ENOSPC" || e.code === "EDQUOT" || e.code === "SQLITE_FULL") return true
  if (typeof e.message === "string" && FULL_TEXT.test(e.message)) return true
  if (typeof e.reason === "string" && FULL_TEXT.test(e.reason)) return true
  if (Array.isArray(e.logTail) && e.logTail.some((line) => typeof line === "string" && FULL_TEXT.test(line))) {
    return true
  }
  return isDiskFull(e.cause, depth + 1)
}

/**
 * Makes sure the reserve exists at full size. Fails with DiskFull, naming the workspace, when the
 * disk has no room for it: a run that starts there could not record what it does.
 */
export const ensureReserve = (root: string): DiskFull | undefined => {
  const file = reservePath(root)
  try {
    if (fs.statSync(file).size === RESERVE_BYTES) return undefined
  } catch {
    // Not there yet.
  }
  const pending = `${file}.${process.pid}.tmp`
  try {
    fs.mkdirSync(root, { recursive: true })
    // Written, not truncated to size: a sparse file would reserve nothing.
    fs.writeFileSync(pending, Buffer.alloc(RESERVE_BYTES))
    fs.renameSync(pending, file)
    return undefined
  } catch (cause) {
    fs.rmSync(pending, { force: true })
    if (!isDiskFull(cause)) throw cause
    return new DiskFull({
      path: root,
      doing: `reserving ${RESERVE_BYTES / 1024 / 1024} MB for the run's records in`,
      freeBytes: freeBytes(root) ?? 0
    })
  }
}

/** Gives the reserve back to the file system; true when there was one to give. */
export const releaseReserve = (root: string): boolean => {
  try {
    fs.unlinkSync(reservePath(root))
    return true
  } catch {
    return false
  }
}
