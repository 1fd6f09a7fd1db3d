import { it } from "@effect/vitest"
import { Effect } from "effect"
import type { ChildProcess } from "node:child_process"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import { afterEach, describe, expect } from "vitest"
import { stopAbandonedGroup } from "../../../src/worker/processGroup.ts"
import {
  bootId,
  isRecordedGroupLeader,
  liveGroupMembers,
  parseProcStat,
  processIdentity
} from "../../../src/worker/processIdentity.ts"

const started: Array<ChildProcess> = []

/** A process of our own, `detached`: leading its own group, as the engine's workers do. */
const spawnSleeper = (options: { detached: boolean; script?: string } = { detached: true }) => {
  const child = spawn("sh", ["-c", options.script ?? "sleep 60"], { detached: options.detached, stdio: "ignore" })
  started.push(child)
  return child
}

const exited = (child: ChildProcess) =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise<void>((done) => child.once("exit", () => done()))

/** Read independently of the module under test: is `pid` a process that has not exited? */
const running = (pid: number): boolean => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    return !/^\S+ \(.*\) [ZX] /s.test(stat)
  } catch {
    return false
  }
}

const waitUntil = async (predicate: () => boolean, timeoutMs = 10_000) => {
  const start = Date.now()
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error("timed out waiting")
    await new Promise((r) => setTimeout(r, 20))
  }
}

afterEach(async () => {
  for (const child of started.splice(0)) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, "SIGKILL")
      } catch {
        // Already gone.
      }
      await exited(child)
    }
  }
})

describe("/proc/<pid>/stat", () => {
  it("finds the fields after a command name holding spaces and parentheses", () => {
    // Field 22 (start time) is the 20th field after the command name; pgrp is field 5.
    const tail = ["S", "1", "4321", "4321", "0", "-1", "4194560", ...Array.from({ length: 12 }, (_, i) => String(i))]
    tail.push("987654", "1000", "200")
    const stat = parseProcStat(`4321 (evil) S 1 1 1 (x) ${tail.join(" ")}\n`)
    expect(stat).toEqual({
      pid: 4321,
      comm: "evil) S 1 1 1 (x",
      state: "S",
      ppid: 1,
      pgrp: 4321,
      startTicks: "987654"
    })
  })

  it("refuses a truncated line", () => {
    expect(parseProcStat("4321 (sh) S 1 4321")).toBeUndefined()
    expect(parseProcStat("garbage")).toBeUndefined()
  })

  it("reads this process's own stat, start time included", () => {
    const own = fs.readFileSync("/proc/self/stat", "utf8")
    const fields = own.slice(own.lastIndexOf(")") + 2).split(" ")
    expect(parseProcStat(own)?.startTicks).toBe(fields[19])
  })
})

describe("process identity", () => {
  it("is the boot id and start time, stable for one process and different for another", async () => {
    const own = processIdentity(process.pid)
    expect(own).toBe(`${bootId()}:${parseProcStat(fs.readFileSync("/proc/self/stat", "utf8"))!.startTicks}`)
    expect(processIdentity(process.pid)).toBe(own)
    // Start times have clock-tick resolution: a process started later has a later one.
    await new Promise((r) => setTimeout(r, 30))
    const child = spawnSleeper()
    expect(processIdentity(child.pid!)).not.toBe(own)
    expect(processIdentity(4194305)).toBeUndefined()
  })

  it("recognises a recorded group leader only with its own identity", () => {
    const leader = spawnSleeper({ detached: true })
    const identity = processIdentity(leader.pid!)!
    expect(isRecordedGroupLeader(leader.pid!, identity)).toBe(true)
    expect(isRecordedGroupLeader(leader.pid!, "another-boot:1")).toBe(false)
    expect(isRecordedGroupLeader(leader.pid!, null)).toBe(false)
    // Same identity, but the pid leads no group (it is in ours): signalling -pid would miss or hit others.
    const member = spawnSleeper({ detached: false })
    expect(isRecordedGroupLeader(member.pid!, processIdentity(member.pid!))).toBe(false)
  })

  it("lists a group's running members, grandchildren included", async () => {
    const leader = spawnSleeper({ detached: true, script: "sleep 60 & wait" })
    await waitUntil(() => liveGroupMembers(leader.pid!).length === 2)
    expect(liveGroupMembers(leader.pid!)).toContain(leader.pid!)
    expect(liveGroupMembers(4194305)).toEqual([])
  })
})

describe("stopping what a killed engine left behind", () => {
  it.live("never signals a live process whose pid was recorded with another identity (a reused pid)", () =>
    Effect.gen(function*() {
      const stranger = spawnSleeper({ detached: true })
      expect(yield* stopAbandonedGroup(stranger.pid!, "another-boot:12345")).toBe("gone")
      yield* Effect.sleep("100 millis")
      expect(running(stranger.pid!)).toBe(true)
    }))

  it.live("leaves a pid recorded without an identity alone", () =>
    Effect.gen(function*() {
      const unknown = spawnSleeper({ detached: true })
      expect(yield* stopAbandonedGroup(unknown.pid!, null)).toBe("unverified")
      yield* Effect.sleep("100 millis")
      expect(running(unknown.pid!)).toBe(true)
    }))

  it.live("kills the recorded group, grandchildren included, and returns once none of it runs", () =>
    Effect.gen(function*() {
      const leader = spawnSleeper({ detached: true, script: "sleep 60 & wait" })
      yield* Effect.promise(() => waitUntil(() => liveGroupMembers(leader.pid!).length === 2))
      const grandchild = liveGroupMembers(leader.pid!).find((pid) => pid !== leader.pid)!
      expect(running(grandchild)).toBe(true)
      expect(yield* stopAbandonedGroup(leader.pid!, processIdentity(leader.pid!)!)).toBe("stopped")
      expect(running(grandchild)).toBe(false)
      yield* Effect.promise(() => exited(leader))
      expect(leader.signalCode).toBe("SIGKILL")
    }))
})
