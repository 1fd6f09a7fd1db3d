/**
 * One writer per workspace. `run` holds an exclusive lock file; a second `run` on the same workspace
 * is refused with a clear message (or waits, with --wait). A lock left by a dead process (kill -9,
 * power loss) is detected by its pid and taken over; so is one whose pid now belongs to another
 * process (the pid was reused after the holder died, or the machine rebooted), told apart by the
 * process identity the lock records.
 */
import { Duration, Effect, Schedule } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { WorkspaceBusy } from "../domain/Errors.ts"
import { processIdentity } from "../worker/processIdentity.ts"

export interface LockInfo {
  readonly pid: number
  readonly host: string
  readonly startedAt: number
  readonly command: string
  /** "<boot id>:<start ticks>" of the holder (src/worker/processIdentity.ts); absent in older locks or without /proc. */
  readonly identity?: string
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

const readLock = (file: string): LockInfo | undefined => {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as LockInfo
  } catch {
    return undefined
  }
}

/**
 * Whether the recorded holder still holds the lock: a holder on another host is assumed to; one on
 * this host must be alive and, where the lock recorded its identity, still be that process.
 */
const holds = (holder: LockInfo): boolean => {
  if (holder.host !== os.hostname()) return true
  if (!alive(holder.pid)) return false
  if (holder.identity === undefined) return true
  const current = processIdentity(holder.pid)
  // Unreadable now (the process vanished meanwhile, or no /proc): only a mismatch proves a stranger.
  return current === undefined || current === holder.identity
}

/** The process holding the lock, when it still does. */
export const liveHolder = (file: string): LockInfo | undefined => {
  const holder = readLock(file)
  return holder !== undefined && holds(holder) ? holder : undefined
}

const tryAcquire = (file: string, workspace: string): Effect.Effect<void, WorkspaceBusy> =>
  Effect.suspend(() => {
    fs.mkdirSync(path.dirname(file), { recursive: true })
    const identity = processIdentity(process.pid)
    const info: LockInfo = {
      pid: process.pid,
      host: os.hostname(),
      startedAt: Date.now(),
      command: process.argv.slice(2).join(" "),
      ...(identity === undefined ? {} : { identity })
    }
    // Written whole under a private name, then linked into place: link(2) fails if the lock exists, so of
    // two racing processes exactly one creates it, and nobody ever reads a half-written lock.
    const pending = `${file}.${process.pid}.tmp`
    fs.writeFileSync(pending, JSON.stringify(info))
    try {
      try {
        fs.linkSync(pending, file)
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code
        // A file system without hard links: O_EXCL still lets exactly one of two racing processes create it.
        if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP" && code !== "ENOSYS") throw error
        fs.writeFileSync(file, JSON.stringify(info), { flag: "wx" })
      }
      return Effect.void
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error
    } finally {
      fs.rmSync(pending, { force: true })
    }
    const holder = readLock(file)
    // A lock from this host whose process is gone, or whose pid another process now has, is stale; so is
    // an unreadable one (a corrupt file).
    if (holder === undefined || !holds(holder)) {
      const stale = `${file}.stale-${process.pid}`
      try {
        fs.renameSync(file, stale)
        fs.rmSync(stale, { force: true })
      } catch {
        // Someone else took it over first; retry.
      }
      return tryAcquire(file, workspace)
    }
    const since = new Date(holder.startedAt).toISOString()
    return Effect.fail(
      new WorkspaceBusy({
        workspace,
        holder: `'flame-pipe ${holder.command}' (pid ${holder.pid} on ${holder.host}, since ${since})`
      })
    )
  })

/** Holds the workspace lock for the enclosing scope. */
export const acquireWorkspaceLock = (file: string, workspace: string, options: { readonly wait: boolean }) =>
  Effect.acquireRelease(
    options.wait
      ? tryAcquire(file, workspace).pipe(Effect.retry(Schedule.spaced(Duration.millis(500))))
      : tryAcquire(file, workspace),
    () =>
      Effect.sync(() => {
        const holder = readLock(file)
        if (holder?.pid === process.pid) fs.rmSync(file, { force: true })
      })
  )
