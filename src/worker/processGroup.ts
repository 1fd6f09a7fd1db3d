/**
 * Child processes the engine starts lead their own process group (spawned detached), so stopping a
 * stage stops everything it started, grandchildren included; and a stage is over only when that
 * group is dead (execa's cancelSignal alone does not wait). Detached children also keep execa's
 * exit-cleanup handlers out of the engine: those re-raise a Ctrl-C and would kill the engine before
 * it records the interruption.
 */
import { Duration, Effect, Schedule } from "effect"
import { execa } from "execa"
import * as fs from "node:fs"
import { isRecordedGroupLeader, liveGroupMembers } from "./processIdentity.ts"

export const killGroup = (pid: number, signal: NodeJS.Signals): void => {
  try {
    process.kill(-pid, signal)
  } catch {
    // Already gone.
  }
}

/** Asks the group to stop, insists after `graceMs`, and resolves once `exited` has. */
export const stopGroup = async (pid: number, exited: Promise<unknown>, graceMs: number): Promise<void> => {
  killGroup(pid, "SIGTERM")
  const timer = setTimeout(() => killGroup(pid, "SIGKILL"), graceMs)
  await exited.catch(() => undefined)
  clearTimeout(timer)
}

/** What became of a process group a killed engine left behind. */
export type AbandonedGroup =
  /** It was still ours: SIGKILLed, and gone before the run went on. */
  | "stopped"
  /** Its pid is gone, or now belongs to another process (or leads no group): nothing was signalled. */
  | "gone"
  /** No identity was recorded with the pid, so it cannot be told apart from a stranger: left alone. */
  | "unverified"

/** How long a killed group may take to die before the run goes on anyway. */
const ABANDONED_WAIT = Duration.seconds(10)

/**
 * Stops the process group a dead engine recorded as `pid` with `identity`, but only while that pid is
 * still the recorded process and leads its group: a pid reused by an unrelated process is never
 * signalled. Waits until no member of the group is left running, so nothing of it still writes into a
 * staging directory the next attempt is about to use.
 */
export const stopAbandonedGroup = (pid: number, identity: string | null): Effect.Effect<AbandonedGroup> =>
  Effect.suspend(() => {
    if (identity === null) return Effect.succeed("unverified" as const)
    if (!isRecordedGroupLeader(pid, identity)) return Effect.succeed("gone" as const)
    killGroup(pid, "SIGKILL")
    return Effect.sync(() => liveGroupMembers(pid).length === 0).pipe(
      Effect.repeat({ until: (empty) => empty, schedule: Schedule.spaced(Duration.millis(20)) }),
      Effect.timeout(ABANDONED_WAIT),
      Effect.ignore,
      Effect.as("stopped" as const)
    )
  })

export interface CommandOutcome {
  readonly exitCode: number | null
  readonly signal: string | null
  /** Set when the command could not be started at all. */
  readonly startError: string | undefined
}

/**
 * Runs a plain command (no worker protocol) as its own process group with stdout and stderr appended
 * to `logPath`. Interrupting the effect stops the group and waits for it.
 */
export const runCommand = (
  file: string,
  args: ReadonlyArray<string>,
  options: {
    readonly logPath: string
    readonly cwd?: string
    readonly graceMs?: number
    /** Called with the command's pid once it has started (recorded so a later run can stop an orphan). */
    readonly onStart?: (pid: number) => void
  }
): Effect.Effect<CommandOutcome> =>
  Effect.async<CommandOutcome>((resume) => {
    fs.appendFileSync(options.logPath, `$ ${file} ${args.join(" ")}\n`)
    const child = execa(file, [...args], {
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      stdio: ["ignore", { file: options.logPath, append: true }, { file: options.logPath, append: true }],
      detached: true,
      reject: false,
      buffer: false
    })
    if (child.pid !== undefined) options.onStart?.(child.pid)
    const exited = child.then((outcome) => {
      // Anything the command left running in its group goes with it.
      if (child.pid !== undefined) killGroup(child.pid, "SIGKILL")
      return outcome
    })
    exited.then((outcome) =>
      resume(Effect.succeed({
        exitCode: outcome.exitCode ?? null,
        signal: outcome.signal ?? null,
        startError: outcome.failed && outcome.exitCode === undefined && outcome.signal === undefined
          ? (outcome.shortMessage ?? "unknown error")
          : undefined
      }))
    )
    return Effect.promise(async () => {
      if (child.pid !== undefined) await stopGroup(child.pid, exited, options.graceMs ?? 5_000)
    })
  })
