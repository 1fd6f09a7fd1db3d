/**
 * A workspace on a small tmpfs, filled up: the stage that hits the full disk is recorded as failed
 * with a message that says so and where, the database stays consistent, and once space is freed
 * the next run goes on. Mounting needs root (CI runs as root); elsewhere the test is skipped.
 */
import Database from "better-sqlite3"
import { execa } from "execa"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { cli, runJson, STACK_FRAME } from "../../support/cli.ts"

const mountPoint = fs.mkdtempSync(path.join(os.tmpdir(), "fp-full-"))
const mounted = await execa("mount", ["-t", "tmpfs", "-o", "size=32m", "tmpfs", mountPoint], { reject: false })
  .then((r) => r.exitCode === 0)
afterAll(async () => {
  if (mounted) await execa("umount", [mountPoint], { reject: false })
  fs.rmSync(mountPoint, { recursive: true, force: true })
})

let fillers = 0

/** Leaves `keepKb` KB free on the tmpfs. */
const fillUp = (keepKb: number) => {
  const { bavail, bsize } = fs.statfsSync(mountPoint)
  const fill = bavail * bsize - keepKb * 1024
  const fd = fs.openSync(path.join(mountPoint, `filler-${fillers++}`), "w")
  const chunk = Buffer.alloc(1024 * 1024)
  for (let written = 0; written < fill; written += chunk.length) {
    fs.writeSync(fd, chunk, 0, Math.min(chunk.length, fill - written))
  }
  fs.closeSync(fd)
}

describe.skipIf(!mounted)("a full disk", () => {
  it("fails the stage that hit it, says where, keeps the database consistent; freeing space lets the next run finish", async () => {
    const ws = path.join(mountPoint, "ws")
    expect((await runJson(["toy", "--workspace", ws])).summary?.executed).toBe(7)
    fillUp(100)

    // 20000 numbers do not fit in 100 KB.
    const full = await cli(["run", "toy", "--workspace", ws, "--set", "generate.count=20000"])
    expect(full.exitCode, full.stdout + full.stderr).toBe(1)
    expect(full.stderr + full.stdout).not.toMatch(STACK_FRAME)
    expect(full.stdout).toMatch(/FAILED generate .*disk full: writing into .*staging\/generate\//)
    expect(full.stdout).toContain(`the disk holding ${ws} is full (found by generate)`)

    const db = new Database(path.join(ws, "lineage.sqlite"), { readonly: true })
    try {
      expect(db.pragma("integrity_check", { simple: true })).toBe("ok")
      expect(db.prepare("select count(*) as n from executions where status = 'running'").get()).toEqual({ n: 0 })
      const failed = db.prepare("select stage_id, error from executions where status = 'failed'").all() as Array<
        { stage_id: string; error: string }
      >
      expect(failed.map((f) => f.stage_id)).toEqual(["generate"])
      expect(JSON.parse(failed[0]!.error).reason).toMatch(/^disk full: writing into .*ENOSPC/)
      expect(db.prepare("select status from runs order by started_at").all()).toEqual([
        { status: "succeeded" },
        { status: "failed" }
      ])
    } finally {
      db.close()
    }

    // Still full: the next run refuses to start, in one line, and records nothing.
    fillUp(0)
    const refused = await cli(["run", "toy", "--workspace", ws, "--set", "generate.count=20000"])
    expect(refused.exitCode).toBe(1)
    expect(refused.stderr).toMatch(/^error: .*disk full/m)
    expect(refused.stderr).not.toMatch(STACK_FRAME)

    for (let i = 0; i < fillers; i++) fs.rmSync(path.join(mountPoint, `filler-${i}`))
    const after = await runJson(["toy", "--workspace", ws, "--set", "generate.count=20000"])
    expect(after.summary?.status).toBe("succeeded")
  })
})
