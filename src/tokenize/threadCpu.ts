/**
 * CPU time of the calling thread (a worker thread's own, where process.cpuUsage() would count the
 * whole process), from Linux's /proc/thread-self/schedstat (nanoseconds on the CPU). Undefined
 * where that file does not exist.
 */
import * as fs from "node:fs"

export const threadCpuSeconds = (): number | undefined => {
  try {
    const ns = Number(fs.readFileSync("/proc/thread-self/schedstat", "latin1").split(" ", 1)[0])
    return Number.isFinite(ns) ? ns / 1e9 : undefined
  } catch {
    return undefined
  }
}
