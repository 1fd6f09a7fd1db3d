/**
 * Runs a child worker that speaks the JSON-lines protocol on fd 3 (docs/worker-protocol.md).
 *
 * The child gets its own process group, so stopping a stage stops everything it started; and a stage
 * is over only when its worker is dead: on interruption we signal the group and wait for the exit
 * (execa's cancelSignal alone does not wait).
 */
import { Effect, Either } from "effect"
import { execa } from "execa"
import * as fs from "node:fs"
import * as path from "node:path"
import * as readline from "node:readline"
import type { Readable } from "node:stream"
import { WorkerFailed } from "../domain/Errors.ts"
import type { WorkerMessage } from "../domain/WorkerMessage.ts"
import { decodeWorkerLine } from "../domain/WorkerMessage.ts"
import type { StageContext } from "../Stage.ts"
import { killGroup, stopGroup } from "./processGroup.ts"

export interface WorkerSpec {
  readonly file: string
  readonly args: ReadonlyArray<string>
  readonly env?: Readonly<Record<string, string>>
  readonly cwd?: string
  /** Called for `artifact` messages, e.g. a checkpoint that is now complete. */
  readonly onArtifact?: (name: string, path: string) => void
  /** Called with the child's pid once it has started (recorded so a later run can clean up an orphan). */
  readonly onStart?: (pid: number) => void
}

const GRACE_MS = 5_000

/** A child process of a stage failed: the error carries its exit and the end of the stage's log. */
export const workerFailed = (
  ctx: { readonly stageId: string; readonly logPath: string },
  reason: string,
  exitCode: number | null,
  signal: string | null
) =>
  new WorkerFailed({
    stage: ctx.stageId,
    reason,
    exitCode,
    signal,
    logPath: ctx.logPath,
    logTail: [...logTail(ctx.logPath)]
  })

/** The last lines of a log file, for error messages. */
export const logTail = (file: string, lines = 20): ReadonlyArray<string> => {
  try {
    const size = fs.statSync(file).size
    const length = Math.min(size, 64 * 1024)
    const buffer = Buffer.alloc(length)
    const fd = fs.openSync(file, "r")
    try {
      fs.readSync(fd, buffer, 0, length, size - length)
    } finally {
      fs.closeSync(fd)
    }
    return buffer.toString("utf8").split("\n").filter((l) => l.length > 0).slice(-lines)
  } catch {
    return []
  }
}

export const runWorker = (ctx: StageContext<unknown>, spec: WorkerSpec): Effect.Effect<unknown, WorkerFailed> =>
  Effect.async<unknown, WorkerFailed>((resume) => {
    const logFd = fs.openSync(ctx.logPath, "a")
    fs.writeSync(logFd, `$ ${spec.file} ${spec.args.join(" ")}\n`)
    const env: Record<string, string> = { ...spec.env, FLAME_PROTOCOL_FD: "3", OMP_NUM_THREADS: String(ctx.cpus) }
    if (ctx.gpus.length > 0) env.CUDA_VISIBLE_DEVICES = ctx.gpus.join(",")
    const spawnedAt = Date.now()
    const child = execa(spec.file, [...spec.args], {
      cwd: spec.cwd ?? ctx.workDir,
      env,
      // Both streams append to the stage log; the protocol has fd 3 to itself.
      stdio: ["ignore", { file: ctx.logPath, append: true }, { file: ctx.logPath, append: true }, "pipe"],
      detached: true,
      reject: false,
      buffer: false
    })
    let result: { value: unknown } | undefined
    let protocolError: string | undefined

    const handle = (message: WorkerMessage) => {
      switch (message.type) {
        case "progress":
          return Effect.runSync(ctx.progress(message.step, message.total))
        case "metric":
          return Effect.runSync(ctx.metric(message.name, message.step, message.value))
        case "log":
          return fs.writeSync(logFd, `[${message.level}] ${message.message}\n`)
        case "artifact":
          ctx.outputReady?.(path.resolve(ctx.workDir, message.path))
          return spec.onArtifact?.(message.name, message.path)
        case "result":
          result = { value: message.value }
          return
      }
    }

    if (child.pid !== undefined) {
      Effect.runSync(ctx.workerStarted(child.pid))
      spec.onStart?.(child.pid)
    }
    const channel = child.stdio[3] as Readable
    const lines = readline.createInterface({ input: channel, crlfDelay: Infinity })
    lines.on("line", (line) => {
      if (line.trim() === "" || protocolError !== undefined) return
      const decoded = decodeWorkerLine(line)
      if (Either.isLeft(decoded)) {
        protocolError = `malformed protocol message: ${line.slice(0, 200)}`
        fs.writeSync(logFd, `[engine] ${protocolError}\n`)
        if (child.pid !== undefined) killGroup(child.pid, "SIGKILL")
        return
      }
      handle(decoded.right)
    })
    const channelClosed = new Promise<void>((done) => lines.once("close", () => done()))

    const finished = Promise.all([child, channelClosed]).then(([outcome]) => {
      // Anything else in the group (grandchildren) goes with the worker.
      if (child.pid !== undefined) killGroup(child.pid, "SIGKILL")
      // The worker's own lifetime, so time spent outside workers (the engine's overhead) can be measured.
      const endedAt = Date.now()
      fs.writeSync(
        logFd,
        `[engine] worker exited (code ${outcome.exitCode ?? "-"}, signal ${outcome.signal ?? "-"}) after ${
          endedAt - spawnedAt
        } ms; ran from ${spawnedAt} to ${endedAt} (epoch ms)\n`
      )
      fs.closeSync(logFd)
      return outcome
    })
    finished.then((outcome) => {
      const exitCode = outcome.exitCode ?? null
      const signal = outcome.signal ?? null
      if (protocolError !== undefined) {
        resume(Effect.fail(workerFailed(ctx, protocolError, exitCode, signal)))
      } else if (exitCode !== 0 || signal !== null) {
        const reason = outcome.failed && outcome.exitCode === undefined && signal === null
          ? `could not start ${spec.file}: ${outcome.shortMessage ?? "unknown error"}`
          : "worker failed"
        resume(Effect.fail(workerFailed(ctx, reason, exitCode, signal)))
      } else if (result === undefined) {
        resume(Effect.fail(workerFailed(ctx, "worker exited without a result message", 0, null)))
      } else resume(Effect.succeed(result.value))
    })

    // Interruption: ask politely, insist after a grace period, and only return once the worker is dead.
    return Effect.promise(async () => {
      if (child.pid !== undefined) await stopGroup(child.pid, finished, GRACE_MS)
    })
  })
