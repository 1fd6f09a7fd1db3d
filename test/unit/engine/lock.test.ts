import { it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import type { ChildProcess } from "node:child_process"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, describe, expect } from "vitest"
import { processIdentity } from "../../../src/worker/processIdentity.ts"
import { acquireWorkspaceLock, liveHolder } from "../../../src/workspace/WorkspaceLock.ts"

const started: Array<ChildProcess> = []

/** A live process that is not a flame-pipe run: what a lock's pid may belong to once it is reused. */
const stranger = () => {
  const child = spawn("sleep", ["60"], { stdio: "ignore" })
  started.push(child)
  return child.pid!
}

afterEach(() => {
  for (const child of started.splice(0)) child.kill("SIGKILL")
})

const lockIn = (holder: Record<string, unknown>) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fp-lock-"))
  const file = path.join(dir, ".lock")
  fs.writeFileSync(file, JSON.stringify({ host: os.hostname(), startedAt: 0, command: "run x", ...holder }))
  return { dir, file }
}

// The lock polls and its holders are real processes: these run on the real clock (it.live, it.scopedLive).
describe("workspace lock", () => {
  it.live("refuses a second holder and releases on scope exit", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fp-lock-"))
      const file = path.join(dir, ".lock")
      yield* Effect.scoped(Effect.gen(function*() {
        yield* acquireWorkspaceLock(file, dir, { wait: false })
        // The same pid counts as alive: a second acquisition must be refused.
        const second = yield* Effect.exit(Effect.scoped(acquireWorkspaceLock(file, dir, { wait: false })))
        expect(Exit.isFailure(second)).toBe(true)
      }))
      expect(fs.existsSync(file)).toBe(false)
      expect(fs.readdirSync(dir)).toEqual([])
    }))

  it.scopedLive("records the holder's process identity", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fp-lock-"))
      const file = path.join(dir, ".lock")
      yield* acquireWorkspaceLock(file, dir, { wait: false })
      const info = JSON.parse(fs.readFileSync(file, "utf8")) as { pid: number; identity?: string }
      expect(info.pid).toBe(process.pid)
      expect(info.identity).toBe(processIdentity(process.pid))
      expect(info.identity).toMatch(/^[0-9a-f-]{36}:\d+$/)
    }))

  it.scopedLive("takes over a lock left by a dead process", () => {
    // pid 2^22+1 is above Linux's pid_max default, so no process has it.
    const { dir, file } = lockIn({ pid: 4194305 })
    return acquireWorkspaceLock(file, dir, { wait: false })
  })

  it.live("takes over a lock whose pid now belongs to an unrelated live process", () =>
    Effect.gen(function*() {
      const pid = stranger()
      const { dir, file } = lockIn({ pid, identity: "a0000000-0000-0000-0000-000000000000:12345" })
      expect(liveHolder(file)).toBeUndefined()
      yield* Effect.scoped(Effect.gen(function*() {
        yield* acquireWorkspaceLock(file, dir, { wait: false })
        expect((JSON.parse(fs.readFileSync(file, "utf8")) as { pid: number }).pid).toBe(process.pid)
      }))
      // The stranger itself is left alone.
      expect(() => process.kill(pid, 0)).not.toThrow()
    }))

  it.live("--wait does not wait forever on a lock whose pid was reused", () =>
    Effect.gen(function*() {
      const { dir, file } = lockIn({ pid: stranger(), identity: "a0000000-0000-0000-0000-000000000000:12345" })
      const exit = yield* Effect.exit(
        Effect.scoped(acquireWorkspaceLock(file, dir, { wait: true })).pipe(Effect.timeout("3 seconds"))
      )
      expect(Exit.isSuccess(exit)).toBe(true)
    }))

  it.live("still refuses a live holder whose identity matches (or, in an older lock, is not recorded)", () =>
    Effect.gen(function*() {
      const pid = stranger()
      for (const holder of [{ pid, identity: processIdentity(pid) }, { pid }]) {
        const { dir, file } = lockIn(holder)
        expect(liveHolder(file)?.pid).toBe(pid)
        const exit = yield* Effect.exit(Effect.scoped(acquireWorkspaceLock(file, dir, { wait: false })))
        expect(Exit.isFailure(exit)).toBe(true)
      }
    }))
})
