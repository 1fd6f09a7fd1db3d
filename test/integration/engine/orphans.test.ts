/**
 * A run killed with SIGKILL while the kernels compile: make and its compilers lead their own process
 * group, so they outlive the engine and go on writing into staging. The next run must stop them (and
 * only them) before it compiles again.
 */
import Database from "better-sqlite3"
import { execa } from "execa"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { bin, executedStages, root, runJson, tempWorkspace } from "../../support/cli.ts"

const pipeline = path.join(root, "test", "integration", "engine", "pipelines", "kernels.ts")

const waitFor = async (predicate: () => boolean, timeoutMs = 120_000) => {
  const start = Date.now()
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error("timed out waiting")
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** State and process group of a pid, read straight from /proc; undefined once it is gone. */
const procState = (pid: number): { state: string; pgrp: number } | undefined => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return { state: fields[0]!, pgrp: Number(fields[2]) }
  } catch {
    return undefined
  }
}

/** Still running: present and not a zombie. */
const running = (pid: number): boolean => {
  const s = procState(pid)
  return s !== undefined && s.state !== "Z" && s.state !== "X"
}

const runningInGroup = (pgrp: number): Array<number> =>
  fs.readdirSync("/proc").filter((e) => /^\d+$/.test(e)).map(Number).filter((pid) =>
    procState(pid)?.pgrp === pgrp && running(pid)
  )

/**
 * A C++ compiler for make's CXX: it answers --version; otherwise, until `<dir>/fast` exists, it
 * "compiles" forever, appending to a file next to its output (in staging) and noting its pid; once
 * `fast` exists it writes an empty output at once.
 */
const slowCompiler = (dir: string): string => {
  const file = path.join(dir, "slow-c++")
  fs.writeFileSync(
    file,
    `#!/bin/sh
if [ "$1" = "--version" ]; then echo "slow-c++ 1.0"; exit 0; fi
out=""; prev=""
for arg in "$@"; do
  if [ "$prev" = "-o" ]; then out="$arg"; fi
  prev="$arg"
done
if [ -e "${dir}/fast" ]; then mkdir -p "$(dirname "$out")"; : > "$out"; exit 0; fi
echo $$ >> "${dir}/compilers"
while :; do echo compiling >> "$out.partial"; sleep 0.1; done
`,
    { mode: 0o755 }
  )
  return file
}

describe("a compile interrupted by SIGKILL", () => {
  it("is recorded like a worker, stopped by the next run, and the next run completes", async () => {
    const ws = tempWorkspace()
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fp-slow-cxx-"))
    const args = [pipeline, "--workspace", ws, "--set", `compile-kernels.compiler=${slowCompiler(dir)}`]
    const compilersFile = path.join(dir, "compilers")
    const compilers = () =>
      fs.existsSync(compilersFile) ? fs.readFileSync(compilersFile, "utf8").split("\n").filter(Boolean).map(Number) : []

    const first = execa(process.execPath, [bin, "run", ...args], { cwd: root, reject: false })
    let make: number | undefined
    try {
      await waitFor(() => compilers().length > 0)
      const db = new Database(path.join(ws, "lineage.sqlite"), { readonly: true })
      const recorded = db.prepare(
        "select worker_pid as pid, worker_identity as identity from executions where stage_id = 'compile-kernels'"
      ).get() as { pid: number | null; identity: string | null }
      db.close()
      make = recorded.pid ?? undefined
      // make leads the group its compilers run in, and its identity is recorded with its pid.
      expect(make).toBeGreaterThan(0)
      expect(recorded.identity).toMatch(/^[0-9a-f-]{36}:\d+$/)
      expect(procState(compilers()[0]!)?.pgrp).toBe(make)

      first.kill("SIGKILL")
      await first
      // What the killed engine left behind: make and its compilers, still running.
      expect(running(make!)).toBe(true)
      expect(compilers().every(running)).toBe(true)

      fs.writeFileSync(path.join(dir, "fast"), "")
      const second = await runJson(args)
      expect(second.summary?.status, second.result.stderr.slice(-2000)).toBe("succeeded")
      expect(executedStages(second.summary)).toContain("compile-kernels")
      expect(second.result.stderr).toContain("stopped what the interrupted compile-kernels left running")
      expect(runningInGroup(make!)).toEqual([])
      expect(compilers().filter(running)).toEqual([])

      const after = new Database(path.join(ws, "lineage.sqlite"), { readonly: true })
      const statuses = after.prepare(
        "select status from executions where stage_id = 'compile-kernels' order by started_at"
      ).all()
      after.close()
      expect(statuses).toEqual([{ status: "interrupted" }, { status: "succeeded" }])
    } finally {
      first.kill("SIGKILL")
      // Whatever of this test's own compile is still running (the test failed) goes now.
      const groups = new Set([make, ...compilers().map((pid) => procState(pid)?.pgrp)])
      for (const group of groups) {
        if (group !== undefined && group > 1 && runningInGroup(group).length > 0) process.kill(-group, "SIGKILL")
      }
    }
  })
})
