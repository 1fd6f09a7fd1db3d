/**
 * Size and mtime prove nothing about content: a program rewritten in place with its mtime restored,
 * or an output whose bytes rotted. Executables are always hashed from their bytes; recorded outputs
 * are when `run --verify` (or audit) asks.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { cli, executedStages, root, runJson, tempWorkspace } from "../../support/cli.ts"

/** A fixed mtime, so that it can be restored exactly (utimes takes seconds; the stat cache compares ns). */
const FIXED_TIME = 1_700_000_000

/** Rewrites a file in place with same-size content and the fixed mtime, as a careless tool or an attacker would. */
const rewriteKeepingStat = (file: string, content: string) => {
  const before = fs.statSync(file)
  expect(Buffer.byteLength(content)).toBe(before.size)
  fs.writeFileSync(file, content)
  fs.utimesSync(file, FIXED_TIME, FIXED_TIME)
  const after = fs.statSync(file)
  expect([after.size, after.ino, after.mtimeMs]).toEqual([before.size, before.ino, before.mtimeMs])
}

const workerSource = (tag: string) =>
  `import * as fs from "node:fs"\nfs.writeFileSync(process.argv[2], ${JSON.stringify(tag)})\n`

const pipeline = path.join(root, "test/fixtures/pipelines/exec.ts")

describe("content, not stat", () => {
  it("a worker rewritten with its size and mtime kept is hashed anew: the stage reruns under the new hash", async () => {
    const ws = tempWorkspace()
    const worker = path.join(ws, "worker.mjs")
    fs.writeFileSync(worker, workerSource("v1"))
    fs.utimesSync(worker, FIXED_TIME, FIXED_TIME)
    process.env.FLAME_TEST_WORKER = worker

    const first = await runJson([pipeline, "--workspace", ws])
    expect(executedStages(first.summary)).toEqual(["exec"])
    rewriteKeepingStat(worker, workerSource("v2"))

    const planned = await cli(["plan", pipeline, "--workspace", ws, "--json"])
    const entry = JSON.parse(planned.stdout).stages[0] as { status: string; reasons: Array<{ _tag: string }> }
    expect(entry.status).toBe("stale")
    expect(entry.reasons.map((r) => r._tag)).toEqual(["WorkerChanged"])

    const second = await runJson([pipeline, "--workspace", ws])
    expect(executedStages(second.summary)).toEqual(["exec"])
    const outputs = fs.readdirSync(path.join(ws, "artifacts", "exec"))
      .map((fp) => fs.readFileSync(path.join(ws, "artifacts", "exec", fp, "out.txt"), "utf8"))
    expect(outputs.sort()).toEqual(["v1", "v2"])
  })

  it("bit rot under an unchanged stat: run trusts the stat cache, run --verify and audit find it, --verify rebuilds", async () => {
    const ws = tempWorkspace()
    expect((await runJson(["toy", "--workspace", ws])).summary?.executed).toBe(7)
    const dir = path.join(ws, "artifacts", "filter")
    const kept = path.join(dir, fs.readdirSync(dir)[0]!, "kept.json")
    // Let the stat cache learn the fixed mtime with the intact bytes, then rot them under it.
    fs.utimesSync(kept, FIXED_TIME, FIXED_TIME)
    expect((await runJson(["toy", "--workspace", ws])).summary?.executed).toBe(0)
    const intact = fs.readFileSync(kept, "utf8")
    const rotted = intact.replace(/\d/, (d) => String((Number(d) + 1) % 10))
    fs.chmodSync(kept, 0o644)
    rewriteKeepingStat(kept, rotted)

    expect((await runJson(["toy", "--workspace", ws])).summary?.executed).toBe(0)

    const audit = await cli(["audit", "toy", "--workspace", ws, "--json"])
    expect(audit.exitCode).toBe(1)
    expect(audit.stdout).toContain("kept.json")

    const verified = await runJson(["toy", "--workspace", ws, "--verify"])
    expect(verified.summary?.status).toBe("succeeded")
    expect(executedStages(verified.summary)).toEqual(["filter"])
    expect(fs.readFileSync(kept, "utf8")).toBe(intact)
  })
})
