/**
 * One writer per workspace. `run` holds an exclusive lock file; a second `run` on the same workspace
 * is refused with a clear message (or waits, with --wait). A lock left by a dead process (kill -9,
 * power loss) is detected by its pid and taken over.
 */
import { Duration, Effect, Schedule } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { WorkspaceBusy } from "../domain/Errors.ts"

export interface LockInfo {
  readonly pid: number
  readonly host: string
  readonly startedAt: number
  readonly command: string
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

/** The process holding the lock, when it is alive (a holder on another host is assumed to be). */
export const liveHolder = (file: string): LockInfo | undefined => {
  const holder = readLock(file)
  if (holder === undefined) return undefined
  return holder.host !== os.hostname() || alive(holder.pid) ? holder : undefined
}

const tryAcquire = (file: string, workspace: string): Effect.Effect<void, WorkspaceBusy> =>
  Effect.suspend(() => {
    fs.mkdirSync(path.dirname(file), { recursive: true })
    const info: LockInfo = {
      pid: process.pid,
      host: os.hostname(),
      startedAt: Date.now(),
      command: process.argv.slice(2).join(" ")
    }
    try {
      // O_EXCL: of two racing processes exactly one creates the file.
      fs.writeFileSync(file, JSON.stringify(info), { flag: "wx" })
      return Effect.void
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error
    }
    const holder = readLock(file)
    // A lock from this host whose process is gone is stale; so is an unreadable one (a writer killed mid-write).
    if (holder === undefined || (holder.host === os.hostname() && !alive(holder.pid))) {
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
