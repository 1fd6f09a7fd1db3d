import { Effect, Exit } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { acquireWorkspaceLock } from "../../../src/workspace/WorkspaceLock.ts"

describe("workspace lock", () => {
  it("refuses a second holder and releases on scope exit", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fp-lock-"))
    const file = path.join(dir, ".lock")
    await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      yield* acquireWorkspaceLock(file, dir, { wait: false })
      // The same pid counts as alive: a second acquisition must be refused.
      const second = yield* Effect.exit(Effect.scoped(acquireWorkspaceLock(file, dir, { wait: false })))
      expect(Exit.isFailure(second)).toBe(true)
    })))
    expect(fs.existsSync(file)).toBe(false)
  })

  it("takes over a lock left by a dead process", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fp-lock-"))
    const file = path.join(dir, ".lock")
    // pid 2^22+1 is above Linux's pid_max default, so no process has it.
    fs.writeFileSync(file, JSON.stringify({ pid: 4194305, host: os.hostname(), startedAt: 0, command: "run x" }))
    await Effect.runPromise(Effect.scoped(acquireWorkspaceLock(file, dir, { wait: false })))
  })
})
