/**
 * Child processes the engine starts lead their own process group (spawned detached), so stopping a
 * stage stops everything it started, grandchildren included; and a stage is over only when that
 * group is dead (execa's cancelSignal alone does not wait). Detached children also keep execa's
 * exit-cleanup handlers out of the engine: those re-raise a Ctrl-C and would kill the engine before
 * it records the interruption.
 */
import { Effect } from "effect"
import { execa } from "execa"
import * as fs from "node:fs"

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
  options: { readonly logPath: string; readonly cwd?: string; readonly graceMs?: number }
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
