import Database from "better-sqlite3"
import { execa } from "execa"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { bin, root, tempWorkspace } from "../../support/cli.ts"

/** Resolves once the toy's summing worker has been recorded as started. */
const workerStarted = async (ws: string) => {
  const start = Date.now()
  for (;;) {
    if (Date.now() - start > 60_000) throw new Error("the worker never started")
    if (fs.existsSync(path.join(ws, "lineage.sqlite"))) {
      const db = new Database(path.join(ws, "lineage.sqlite"), { readonly: true })
      try {
        const row = db.prepare("select worker_pid as pid from executions where stage_id = 'sum'").get() as
          | { pid: number | null }
          | undefined
        if (row?.pid != null) return
      } catch {
        // Not migrated yet.
      } finally {
        db.close()
      }
    }
    await new Promise((r) => setTimeout(r, 50))
  }
}

describe("Ctrl-C", () => {
  it.each([false, true])("prints the run's summary before exiting 130 (--json: %s)", async (json) => {
    const ws = tempWorkspace()
    const child = execa(
      process.execPath,
      [bin, "run", "toy", "--workspace", ws, "--set", "sum.sleepMs=100", ...(json ? ["--json"] : [])],
      { cwd: root, reject: false }
    )
    await workerStarted(ws)
    child.kill("SIGINT")
    const ended = await child
    expect(ended.exitCode, ended.stderr.slice(-2000)).toBe(130)
    if (json) {
      const summary = JSON.parse(ended.stdout) as { status: string; interrupted: number; executed: number }
      expect(summary.status).toBe("interrupted")
      expect(summary.interrupted).toBe(1)
      expect(summary.executed).toBeGreaterThan(0)
    } else {
      expect(ended.stdout).toMatch(
        /^interrupted: \d+ executed, 0 cached, 0 failed, \d+ skipped, 1 interrupted in .+ \(run [0-9a-f]{8}\)$/m
      )
    }
  })
})
