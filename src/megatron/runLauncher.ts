/**
 * Runs the Megatron launcher (srun or torchrun) as a child process group: its output goes to the
 * stage log and, line by line, through the log parser into metrics and progress. As with the
 * worker, a stage is over only when the whole group is dead: interruption sends SIGTERM (srun and
 * torchrun pass it on to every rank), then SIGKILL after a grace period.
 */
import { Effect } from "effect"
import { execa } from "execa"
import * as fs from "node:fs"
import * as readline from "node:readline"
import type { Readable } from "node:stream"
import type { WorkerFailed } from "../domain/Errors.ts"
import type { StageContext } from "../Stage.ts"
import { killGroup, stopGroup } from "../worker/processGroup.ts"
import { workerFailed } from "../worker/runWorker.ts"
import type { LaunchPlan } from "./Launch.ts"
import { launchLines } from "./Launch.ts"

/** Ranks flush and close their files on SIGTERM; a checkpoint being written can take a while. */
const GRACE_MS = 30_000

export const runLauncher = (
  ctx: StageContext<unknown>,
  plan: LaunchPlan,
  onLine: (line: string) => void
): Effect.Effect<void, WorkerFailed> =>
  Effect.async<void, WorkerFailed>((resume) => {
    const logFd = fs.openSync(ctx.logPath, "a")
    fs.writeSync(logFd, `${launchLines(plan).join("\n")}\n`)
    const child = execa(plan.file, [...plan.args], {
      cwd: plan.cwd,
      env: { ...plan.env },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
      reject: false,
      buffer: false
    })
    if (child.pid !== undefined) Effect.runSync(ctx.workerStarted(child.pid))
    const follow = (stream: Readable) => {
      const lines = readline.createInterface({ input: stream, crlfDelay: Infinity })
      lines.on("line", (line) => {
        fs.writeSync(logFd, `${line}\n`)
        onLine(line)
      })
      return new Promise<void>((done) => lines.once("close", () => done()))
    }
    const streams = Promise.all([follow(child.stdout as Readable), follow(child.stderr as Readable)])
    const finished = Promise.all([child, streams]).then(([outcome]) => {
      if (child.pid !== undefined) killGroup(child.pid, "SIGKILL")
      fs.closeSync(logFd)
      return outcome
    })
    finished.then((outcome) => {
      const exitCode = outcome.exitCode ?? null
      const signal = outcome.signal ?? null
      if (exitCode === 0 && signal === null) return resume(Effect.void)
      const reason = outcome.failed && outcome.exitCode === undefined && signal === null ?
        `could not start ${plan.file}: ${outcome.shortMessage ?? "unknown error"}` :
        "Megatron-LM failed"
      resume(Effect.fail(workerFailed(ctx, reason, exitCode, signal)))
    })
    return Effect.promise(async () => {
      if (child.pid !== undefined) await stopGroup(child.pid, finished, GRACE_MS)
    })
  })
