/**
 * Audits and garbage collection on the tiny scaling suite (its smallest scale: see one-scale-suite.ts),
 * through the real CLI and worker. One workspace, tests in order: each damage is undone before the next.
 */
import Database from "better-sqlite3"
import { execa } from "execa"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { AuditReport } from "../../../src/domain/Audit.ts"
import type { GcPlan } from "../../../src/domain/Gc.ts"
import { bin, root, tempWorkspace } from "../../support/cli.ts"
import { SCALE } from "./one-scale-suite.ts"

const pipeline = path.join(root, "test", "integration", "audit", "one-scale-suite.ts")
const ws = tempWorkspace("fp-audit-suite-")
// A private copy of the worker's sources: the store hard-links sources, and kernels/ may be edited meanwhile.
const kernels = path.join(ws, "..", `${path.basename(ws)}-kernels`)
const TRAIN = `train/${SCALE}`

/** The CLI from its sources, which can load the pipeline module even when a command does not name it. */
const cli = (args: ReadonlyArray<string>) =>
  execa(process.execPath, [
    bin,
    ...args,
    "--workspace",
    ws,
    ...(args.includes(pipeline) ? ["--config", `kernels=${kernels}`] : [])
  ], {
    cwd: root,
    reject: false,
    timeout: 300_000,
    env: { FORCE_COLOR: "0", NO_COLOR: "1", FLAME_PIPE_FROM_SOURCES: "1" }
  })

const auditJson = async (args: ReadonlyArray<string>) => {
  const result = await cli(["audit", ...args, "--json"])
  let report: AuditReport | undefined
  try {
    report = JSON.parse(result.stdout) as AuditReport
  } catch {
    report = undefined
  }
  if (report === undefined) throw new Error(`audit printed no report (exit ${result.exitCode}):\n${result.stderr}`)
  return { exitCode: result.exitCode, report }
}

const fails = (report: AuditReport) => report.findings.filter((f) => f.severity === "fail")

const query = <A>(sql: string, ...params: ReadonlyArray<unknown>): Array<A> => {
  const db = new Database(path.join(ws, "lineage.sqlite"), { readonly: true })
  try {
    return db.prepare(sql).all(...params) as Array<A>
  } finally {
    db.close()
  }
}

/** The current run's artifact of a stage's output, by name. */
const artifactOf = (stage: string, name: string) =>
  query<{ id: string; path: string; hash: string; execution_id: string }>(
    `select a.id, a.path, a.hash, a.execution_id from artifacts a join executions e on e.id = a.execution_id
     where e.stage_id = ? and a.name = ? and a.collected_at is null order by e.started_at desc limit 1`,
    stage,
    name
  )[0]!

describe("audit and gc on the tiny suite", () => {
  let stages = 0

  beforeAll(async () => {
    fs.cpSync(path.join(root, "kernels", "src"), path.join(kernels, "src"), { recursive: true })
    fs.copyFileSync(path.join(root, "kernels", "Makefile"), path.join(kernels, "Makefile"))
    const first = await cli(["run", pipeline, "--json"])
    expect(first.exitCode, first.stderr.slice(-3000)).toBe(0)
    stages = (JSON.parse(first.stdout) as { stages: Array<unknown> }).stages.length
  }, 600_000)

  // The workspace holds some 100 MB of checkpoints: leave nothing behind.
  afterAll(() => {
    fs.rmSync(ws, { recursive: true, force: true })
    fs.rmSync(kernels, { recursive: true, force: true })
  })

  it("audits clean, re-executing a seeded sample and a training stage bit for bit", async () => {
    // Seed 10 samples tokenization, an evaluation and a routing analysis (the unit tests cover the sampling).
    const { exitCode, report } = await auditJson([pipeline, "--stages", TRAIN, "--sample", "3", "--seed", "10"])
    expect(fails(report)).toEqual([])
    expect(exitCode).toBe(0)
    expect(report.status).toBe("passed")
    expect(report.summary.executions).toBe(stages)
    expect(report.summary.bytesHashed).toBeGreaterThan(50_000_000)
    const results = report.reexecution.results
    expect(results).toHaveLength(4)
    expect(results.every((r) => r.status === "reproduced" && r.reproducibility === "bitwise")).toBe(true)
    expect(results.filter((r) => r.selectedBy === "sample")).toHaveLength(3)
    // Three stage kinds besides training: the sample is spread over kinds.
    expect(new Set(results.map((r) => r.kind)).size).toBe(4)
    const train = results.find((r) => r.stage === TRAIN)!
    expect(train.outputs).toHaveLength(11)
    expect(train.outputs.every((o) => o.equal && o.rebuiltHash === o.recordedHash)).toBe(true)
    // The scratch workspace is gone afterwards.
    expect(fs.existsSync(path.join(ws, ".audit")) ? fs.readdirSync(path.join(ws, ".audit")) : []).toEqual([])
  })

  it("names a checkpoint with a flipped byte, and re-execution shows which file differs from where", async () => {
    const checkpoint = artifactOf(TRAIN, "iter_0000010")
    const file = path.join(ws, checkpoint.path, "model.safetensors")
    const original = fs.readFileSync(file)
    const damaged = Buffer.from(original)
    const offset = original.length - 100
    damaged[offset] = damaged[offset]! ^ 0x01
    fs.writeFileSync(file, damaged)
    try {
      const { exitCode, report } = await auditJson([pipeline, "--stages", TRAIN])
      expect(exitCode).toBe(1)
      const found = fails(report)
      expect(found).toHaveLength(1)
      expect(found[0]).toMatchObject({ check: "integrity", code: "modified", stage: TRAIN })
      expect(found[0]!.artifact).toMatchObject({ id: checkpoint.id, name: "iter_0000010", path: checkpoint.path })
      expect(found[0]!.files).toEqual(["model.safetensors"])
      expect(found[0]!.message).toContain("consumed by 2 execution(s)")
      // Re-executed, training reproduces the recorded bytes; the stored copy is the one that changed.
      const train = report.reexecution.results.find((r) => r.stage === TRAIN)!
      expect(train.status).toBe("reproduced")
      const output = train.outputs.find((o) => o.name === "iter_0000010")!
      expect(output.equal).toBe(true)
      expect(output.storedHash).not.toBe(output.recordedHash)
      expect(output.files).toEqual([{
        path: "model.safetensors",
        change: "differs",
        storedSize: original.length,
        rebuiltSize: original.length,
        firstDifference: offset
      }])
    } finally {
      fs.writeFileSync(file, original)
    }
  })

  it("names a deleted artifact", async () => {
    const trace = artifactOf(`trace/${SCALE}/2`, "trace.bin")
    const file = path.join(ws, trace.path)
    const aside = `${file}.aside`
    fs.renameSync(file, aside)
    try {
      const { exitCode, report } = await auditJson([pipeline, "--quick"])
      expect(exitCode).toBe(1)
      expect(fails(report).map((f) => [f.code, f.stage, f.artifact?.path])).toEqual([
        ["missing", `trace/${SCALE}/2`, trace.path]
      ])
    } finally {
      fs.renameSync(aside, file)
    }
  })

  it("names a swapped worker binary", async () => {
    const worker = artifactOf("compile-kernels", "flame-worker")
    const file = path.join(ws, worker.path)
    const original = fs.readFileSync(file)
    fs.writeFileSync(file, "#!/bin/sh\nexit 0\n")
    try {
      const { exitCode, report } = await auditJson([pipeline])
      expect(exitCode).toBe(1)
      const found = fails(report)
      expect(found.map((f) => [f.code, f.stage, f.artifact?.name])).toEqual([
        ["modified", "compile-kernels", "flame-worker"]
      ])
      // train, 11 evals and 11 traces (10 interval checkpoints and the final one) ran it.
      expect(found[0]!.message).toContain("the worker binary of 23 execution(s)")
      const binary = report.environment.workers.find((w) => w.path === worker.path)!
      expect(binary).toMatchObject({ recordedHash: worker.hash, changed: true, executions: 23 })
    } finally {
      fs.writeFileSync(file, original)
    }
  })

  it("names an edited lineage row", async () => {
    const db = new Database(path.join(ws, "lineage.sqlite"))
    const row = db.prepare("select id, params from executions where stage_id = ? and status = 'succeeded'").get(
      TRAIN
    ) as { id: string; params: string }
    db.prepare("update executions set params = json_set(params, '$.lr', 0.5) where id = ?").run(row.id)
    db.close()
    try {
      const { exitCode, report } = await auditJson([pipeline, "--quick"])
      expect(exitCode).toBe(1)
      const found = fails(report)
      expect(found.map((f) => [f.check, f.code, f.stage, f.execution])).toEqual([
        ["lineage", "fingerprint-mismatch", TRAIN, row.id]
      ])
      expect(found[0]!.message).toContain("lr")
    } finally {
      const restore = new Database(path.join(ws, "lineage.sqlite"))
      restore.prepare("update executions set params = ? where id = ?").run(row.params, row.id)
      restore.close()
    }
  })

  it("gc frees a superseded variant, keeps what the latest run and a pin need, and audit rebuilds it", async () => {
    // A variant (fewer evaluation documents) reruns the requests, the 11 evaluations and the table;
    // going back to the defaults leaves those 13 executions unused.
    const variant = await cli(["run", pipeline, "--set", "eval/requests.limit=4"])
    expect(variant.exitCode, variant.stderr.slice(-2000)).toBe(0)
    const variantTable = artifactOf("suite/table", "table.md")
    const back = await cli(["run", pipeline, "--json"])
    expect(JSON.parse(back.stdout).executed).toBe(0)

    const dry = async () => JSON.parse((await cli(["gc", "--json"])).stdout) as GcPlan
    const listed = await dry()
    expect(listed.dryRun).toBe(true)
    expect(listed.units.map((u) => u.stage).sort()).toEqual(
      [
        "eval/requests",
        "suite/table",
        ...Array.from({ length: 10 }, (_, i) => `eval/${SCALE}/${2 * (i + 1)}`),
        `eval/${SCALE}/21`
      ].sort()
    )
    expect(listed.units.every((u) => u.kind === "outputs" && u.bytes > 0)).toBe(true)
    expect(listed.freedBytes).toBe(listed.units.reduce((s, u) => s + u.bytes, 0))
    expect(fs.existsSync(path.join(ws, variantTable.path))).toBe(true)

    // A pinned table keeps what it cites: its final evaluation and the requests behind it.
    const pinned = await cli(["pin", variantTable.execution_id, "--note", "variant"])
    expect(pinned.exitCode, pinned.stderr).toBe(0)
    const withPin = await dry()
    expect(withPin.units.map((u) => u.stage)).not.toContain("suite/table")
    expect(withPin.units.map((u) => u.stage)).not.toContain(`eval/${SCALE}/21`)
    expect(withPin.units.map((u) => u.stage)).not.toContain("eval/requests")
    expect(withPin.units).toHaveLength(10)
    expect((await cli(["unpin", variantTable.execution_id])).exitCode).toBe(0)

    const collected = JSON.parse((await cli(["gc", "--yes", "--json"])).stdout) as GcPlan
    expect(collected.dryRun).toBe(false)
    expect(collected.units).toHaveLength(13)
    expect(fs.existsSync(path.join(ws, variantTable.path))).toBe(false)
    expect(fs.existsSync(path.join(ws, ".gc"))).toBe(false)
    // Lineage stays, marked collected; the latest run's results are all there.
    const rows = query<{ collected_at: number | null }>(
      "select collected_at from artifacts where id = ?",
      variantTable.id
    )
    expect(rows[0]!.collected_at).not.toBeNull()
    const after = await cli(["run", pipeline, "--json"])
    expect(JSON.parse(after.stdout).executed).toBe(0)
    expect((await dry()).units).toEqual([])

    // The collected table is rebuilt from its records (requests, final evaluation, table) and put back.
    const { exitCode, report } = await auditJson([variantTable.execution_id, "--restore"])
    expect(exitCode, JSON.stringify(fails(report))).toBe(0)
    expect(report.reexecution.results.map((r) => [r.stage, r.status, r.selectedBy]).sort()).toEqual([
      [`eval/${SCALE}/21`, "reproduced", "restore"],
      ["eval/requests", "reproduced", "restore"],
      ["suite/table", "reproduced", "restore"]
    ])
    expect(fs.readFileSync(path.join(ws, variantTable.path), "utf8")).toContain(SCALE)
    expect(query<{ collected_at: number | null }>("select collected_at from artifacts where id = ?", variantTable.id))
      .toEqual([{ collected_at: null }])
    const final = await auditJson([variantTable.execution_id, "--quick"])
    expect(final.report.status).toBe("passed")
  })
})
