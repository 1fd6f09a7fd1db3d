/**
 * Who a pid is. A pid alone names a process only while it lives: once it exits, the kernel hands the
 * number to the next process that asks. A recorded pid is therefore recorded with the identity of its
 * process, "<boot id>:<start time in clock ticks since boot>" (both from /proc), and a later run acts
 * on the pid only while the process there still has that identity.
 *
 * Where /proc is missing (not Linux), no identity can be taken; callers then treat a recorded pid as
 * unverifiable rather than as theirs.
 */
import * as fs from "node:fs"

/** The fields of /proc/<pid>/stat this module needs. */
export interface ProcStat {
  readonly pid: number
  /** The executable's name as the kernel keeps it (at most 15 bytes; may hold spaces and parentheses). */
  readonly comm: string
  /** R, S, D, Z (zombie: exited, not yet reaped), T, ... */
  readonly state: string
  readonly ppid: number
  readonly pgrp: number
  /** Field 22: when the process started, in clock ticks after boot. */
  readonly startTicks: string
}

/**
 * Parses one /proc/<pid>/stat line. The second field is the command name in parentheses, which may
 * itself contain spaces and ')' (a process may call itself anything): it ends at the last ')'.
 */
export const parseProcStat = (text: string): ProcStat | undefined => {
  const open = text.indexOf("(")
  const close = text.lastIndexOf(")")
  if (open < 0 || close < open) return undefined
  const pid = Number(text.slice(0, open).trim())
  // After "pid (comm) " come fields 3 (state) onwards, separated by single spaces.
  const rest = text.slice(close + 2).trim().split(" ")
  const field = (n: number): string | undefined => rest[n - 3]
  const state = field(3)
  const ppid = Number(field(4))
  const pgrp = Number(field(5))
  const startTicks = field(22)
  if (
    !Number.isInteger(pid) || state === undefined || !Number.isInteger(ppid) || !Number.isInteger(pgrp) ||
    startTicks === undefined || !/^\d+$/.test(startTicks)
  ) {
    return undefined
  }
  return { pid, comm: text.slice(open + 1, close), state, ppid, pgrp, startTicks }
}

/** The process's stat, or undefined when there is no such process (or no /proc). */
export const procStat = (pid: number): ProcStat | undefined => {
  if (!Number.isInteger(pid) || pid <= 0) return undefined
  try {
    return parseProcStat(fs.readFileSync(`/proc/${pid}/stat`, "utf8"))
  } catch {
    return undefined
  }
}

let bootIdCache: string | null | undefined

/** This boot's id: start times count from boot, so they identify a process only within one boot. */
export const bootId = (): string | undefined => {
  if (bootIdCache === undefined) {
    try {
      bootIdCache = fs.readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim() || null
    } catch {
      bootIdCache = null
    }
  }
  return bootIdCache ?? undefined
}

/** "<boot id>:<start ticks>" of a live (or not yet reaped) process; undefined when it cannot be told. */
export const processIdentity = (pid: number): string | undefined => {
  const boot = bootId()
  const stat = procStat(pid)
  return boot === undefined || stat === undefined ? undefined : `${boot}:${stat.startTicks}`
}

/**
 * Whether `pid` is still the process recorded with `identity` and still leads its own process group:
 * only then is signalling the group `-pid` signalling what was recorded. An unrecorded identity
 * (null) cannot be checked, so it never matches.
 */
export const isRecordedGroupLeader = (pid: number, identity: string | null | undefined): boolean => {
  if (identity === null || identity === undefined) return false
  const stat = procStat(pid)
  return stat !== undefined && stat.pgrp === pid && processIdentity(pid) === identity
}

/** Pids of the processes in group `pgrp` that have not exited (zombies, already dead, left out). */
export const liveGroupMembers = (pgrp: number): ReadonlyArray<number> => {
  let entries: Array<string>
  try {
    entries = fs.readdirSync("/proc")
  } catch {
    return []
  }
  const members: Array<number> = []
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue
    const stat = procStat(Number(entry))
    if (stat !== undefined && stat.pgrp === pgrp && stat.state !== "Z" && stat.state !== "X") members.push(stat.pid)
  }
  return members
}
