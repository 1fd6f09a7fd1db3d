/**
 * gc and pins on the toy pipeline through the real CLI: what is kept and why, running executions and
 * the workspace lock, orphans and trash, deletion, and history that survives it.
 */
import Database from "better-sqlite3"
import { execa } from "execa"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { GcPlan } from "../../../src/domain/Gc.ts"
import { cli, runJson, tempWorkspace } from "../../support/cli.ts"

const ws = tempWorkspace("fp-gc-toy-")
const toy = ["toy", "--workspace", ws]

const gcJson = async (...args: ReadonlyArray<string>) => {
  const result = await cli(["gc", "--workspace", ws, "--json", ...args])
  expect(result.exitCode, result.stderr).toBe(0)
  return JSON.parse(result.stdout) as GcPlan
}

const db = () => new Database(path.join(ws, "lineage.sqlite"))

/** Output artifacts of the latest succeeded execution of a stage run with the variant param. */
const variantArtifact = (stage: string) => {
  const conn = db()
  try {
    return conn.prepare(`
      select a.id, a.path, a.execution_id from artifacts a join executions e on e.id = a.execution_id
      join runs r on r.id = e.run_id where e.stage_id = ? and r.overrides like '%generate.count%'`).get(stage) as {
      id: string
      path: string
      execution_id: string
    }
  } finally {
    conn.close()
  }
}

const deadPid = async () => {
  const child = execa(process.execPath, ["-e", ""])
  await child
  return child.pid!
}

const writeLock = (pid: number) =>
  fs.writeFileSync(
    path.join(ws, ".lock"),
    JSON.stringify({ pid, host: os.hostname(), startedAt: Date.now(), command: "run toy" })
  )

describe("gc on the toy pipeline", () => {
  afterAll(() => fs.rmSync(ws, { recursive: true, force: true }))

  beforeAll(async () => {
    for (const args of [toy, [...toy, "--set", "generate.count=50"], toy]) {
      const { result } = await runJson(args)
      expect(result.exitCode, result.stderr).toBe(0)
    }
  })

  it("records how each run was started, for audit and gc to resolve its pipeline again", () => {
    const conn = db()
    try {
      const rows = conn.prepare(
        "select pipeline_source, config, gpus, executor_settings, overrides from runs order by started_at"
      ).all() as Array<Record<string, string>>
      expect(rows).toHaveLength(3)
      for (const row of rows) {
        expect(row.pipeline_source).toBe("toy")
        expect(JSON.parse(row.config!)).toEqual({})
        expect(JSON.parse(row.gpus!)).toEqual(expect.any(Array))
        expect(JSON.parse(row.executor_settings!)).toEqual({
          gpus: JSON.parse(row.gpus!).length,
          jobs: expect.any(Number),
          cpus: expect.any(Number)
        })
      }
      expect(JSON.parse(rows[1]!.overrides!)).toEqual({ "generate.count": "50" })
    } finally {
      conn.close()
    }
  })

  it("lists what only the superseded variant used, with sizes, and deletes nothing", async () => {
    const plan = await gcJson()
    expect(plan.dryRun).toBe(true)
    expect(plan.units.map((u) => u.stage).sort()).toEqual(
      ["filter", "generate", "report", "square/0", "square/1", "square/2", "sum"]
    )
    for (const unit of plan.units) {
      expect(unit.kind).toBe("outputs")
      expect(fs.existsSync(path.join(ws, unit.path))).toBe(true)
      const files = fs.readdirSync(path.join(ws, unit.path))
      expect(unit.bytes).toBe(files.reduce((s, f) => s + fs.statSync(path.join(ws, unit.path, f)).size, 0))
    }
    expect(plan.kept.artifacts).toBe(7)
    expect(plan.kept.reasons).toHaveLength(1)
    expect(plan.kept.reasons[0]!.reason).toMatch(/^latest successful run [0-9a-f]{8} of toy \(default\)$/)
  })

  it("keeps a pinned artifact and what it was derived from, until unpinned", async () => {
    const sum = variantArtifact("sum")
    const pinned = await cli(["pin", sum.path, "--workspace", ws])
    expect(pinned.exitCode, pinned.stderr).toBe(0)
    const listing = await cli(["pin", "--workspace", ws])
    expect(listing.stdout).toContain(sum.path)
    const plan = await gcJson()
    // sum keeps its three squares, which keep filter, which keeps generate; report goes.
    expect(plan.units.map((u) => u.stage)).toEqual(["report"])
    expect(plan.kept.reasons.map((r) => r.reason)).toContain(`pinned as ${sum.path}`)
    expect((await cli(["unpin", sum.path, "--workspace", ws])).exitCode).toBe(0)
    expect((await gcJson()).units).toHaveLength(7)
  })

  it("keeps the inputs of a running execution while a run holds the lock, not after the run died", async () => {
    const filter = variantArtifact("filter")
    const conn = db()
    const runId = crypto.randomUUID()
    const executionId = crypto.randomUUID()
    conn.prepare(`insert into runs (id, pipeline, preset, overrides, argv, executor, host, pid, status, started_at)
      values (?, 'toy', 'default', '{}', '[]', 'local', ?, ?, 'running', ?)`).run(
      runId,
      os.hostname(),
      process.pid,
      Date.now()
    )
    conn.prepare(`insert into executions (id, run_id, stage_id, fingerprint, version, params, input_hashes, status,
      started_at, host, executor, log_path, output_dir) values (?, ?, 'square/0', 'f', '1', '{}', '{}', 'running', ?,
      ?, 'local', 'logs/x.log', 'artifacts/square/0/ffff')`).run(executionId, runId, Date.now(), os.hostname())
    conn.prepare("insert into execution_inputs (execution_id, name, artifact_id) values (?, 'numbers', ?)").run(
      executionId,
      filter.id
    )
    conn.close()

    writeLock(process.pid)
    const live = await gcJson()
    expect(live.units.map((u) => u.stage)).not.toContain("filter")
    // filter's input, generate, stays too: what a kept artifact was derived from is kept.
    expect(live.units.map((u) => u.stage)).not.toContain("generate")
    expect(live.warnings.join("\n")).toContain(`pid ${process.pid}`)
    const refused = await cli(["gc", "--yes", "--workspace", ws])
    expect(refused.exitCode).toBe(1)
    expect(refused.stderr).toContain("is in use by 'flame-pipe run toy'")
    expect(fs.existsSync(path.join(ws, filter.path))).toBe(true)

    writeLock(await deadPid())
    const stale = await gcJson()
    expect(stale.units.map((u) => u.stage)).toContain("filter")
  })

  it("deletes with --yes, orphans and trash included; lineage stays and the next run needs nothing", async () => {
    const orphan = path.join(ws, "artifacts", "gone-stage", "0123456789abcdef")
    fs.mkdirSync(orphan, { recursive: true })
    fs.writeFileSync(path.join(orphan, "x.bin"), Buffer.alloc(1000))
    fs.mkdirSync(path.join(ws, ".trash", "left-behind"), { recursive: true })
    fs.writeFileSync(path.join(ws, ".trash", "left-behind", "y"), Buffer.alloc(10))
    const planned = await gcJson()
    expect(planned.units.filter((u) => u.kind === "orphan").map((u) => u.path)).toEqual([
      path.join("artifacts", "gone-stage")
    ])
    expect(planned.units.filter((u) => u.kind === "trash")).toHaveLength(1)

    const done = await gcJson("--yes")
    expect(done.dryRun).toBe(false)
    expect(done.units).toHaveLength(planned.units.length)
    expect(done.freedBytes).toBe(planned.freedBytes)
    for (const unit of done.units) expect(fs.existsSync(path.join(ws, unit.path))).toBe(false)
    expect(fs.existsSync(path.join(ws, ".gc"))).toBe(false)

    const conn = db()
    const rows = conn.prepare(
      `select e.stage_id, a.collected_at from artifacts a join executions e on e.id = a.execution_id
      join runs r on r.id = e.run_id where r.overrides like '%generate.count%'`
    ).all() as Array<
      { stage_id: string; collected_at: number | null }
    >
    conn.close()
    expect(rows).toHaveLength(7)
    expect(rows.every((r) => r.collected_at !== null)).toBe(true)
    const lineage = await cli(["lineage", variantArtifact("report").execution_id, "--workspace", ws])
    expect(lineage.stdout).toContain("(collected)")

    const { summary } = await runJson(toy)
    expect(summary?.executed).toBe(0)
    expect((await gcJson()).units).toEqual([])
    // The variant runs again from scratch: its collected outputs are not mistaken for fresh ones.
    const variant = await runJson([...toy, "--set", "generate.count=50"])
    expect(variant.summary?.status).toBe("succeeded")
    expect(variant.summary?.executed).toBe(7)
  })
})
