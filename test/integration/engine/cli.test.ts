import Database from "better-sqlite3"
import { execa } from "execa"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { bin, cli, executedStages, root, runJson, tempWorkspace } from "../../support/cli.ts"

const waitFor = async (predicate: () => boolean, timeoutMs = 60_000) => {
  const start = Date.now()
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error("timed out waiting")
    await new Promise((r) => setTimeout(r, 50))
  }
}

const stagingHasSum = (ws: string) => fs.existsSync(path.join(ws, "staging", "sum"))
const artifactFiles = (ws: string, stage: string): Array<string> => {
  const dir = path.join(ws, "artifacts", stage)
  if (!fs.existsSync(dir)) return []
  return fs.readdirSync(dir).flatMap((fp) => fs.readdirSync(path.join(dir, fp)).map((f) => path.join(dir, fp, f)))
}

describe("toy pipeline through the CLI", () => {
  it("caches: a second run executes nothing", async () => {
    const ws = tempWorkspace()
    const first = await runJson(["toy", "--workspace", ws])
    expect(first.result.exitCode).toBe(0)
    expect(first.summary?.executed).toBe(7)
    const second = await runJson(["toy", "--workspace", ws])
    expect(second.summary?.executed).toBe(0)
    expect(second.summary?.cached).toBe(7)
  })

  it("--set reruns exactly the stages downstream of the param, and plan names the key with old and new values", async () => {
    const ws = tempWorkspace()
    await runJson(["toy", "--workspace", ws])
    const planned = await cli(["plan", "toy", "--workspace", ws, "--set", "generate.seed=8", "--json"])
    expect(planned.exitCode).toBe(0)
    const plan = JSON.parse(planned.stdout) as {
      stages: Array<{ stage: string; status: string; reasons: Array<Record<string, string>> }>
    }
    const generate = plan.stages.find((s) => s.stage === "generate")!
    expect(generate.status).toBe("stale")
    expect(generate.reasons).toContainEqual({ _tag: "ParamChanged", key: "seed", from: "7", to: "8" })
    expect(plan.stages.filter((s) => s.status === "stale").map((s) => s.stage).sort()).toEqual(
      ["filter", "generate", "report", "square/0", "square/1", "square/2", "sum"]
    )
    const rerun = await runJson(["toy", "--workspace", ws, "--set", "generate.seed=8"])
    expect(executedStages(rerun.summary)).toEqual(
      plan.stages.filter((s) => s.status === "stale").map((s) => s.stage).sort()
    )
    // A param in the middle leaves its upstream alone (and, as the sum does not change, its downstream too).
    const middle = await runJson(["toy", "--workspace", ws, "--set", "generate.seed=8", "--set", "sum.sleepMs=1"])
    expect(executedStages(middle.summary)).toEqual(["sum"])
    const human = await cli(["plan", "toy", "--workspace", ws, "--set", "filter.threshold=500"])
    expect(human.stdout).toContain("param threshold changed: 10 -> 500")
  })

  it("early cutoff: a rerun with identical outputs leaves downstream cached", async () => {
    const ws = tempWorkspace()
    await runJson(["toy", "--workspace", ws])
    // Threshold 10 -> 11 keeps the same numbers unless one of them is exactly 10.
    const kept = JSON.parse(fs.readFileSync(artifactFiles(ws, "filter")[0]!, "utf8")) as Array<number>
    expect(kept).not.toContain(10)
    const rerun = await runJson(["toy", "--workspace", ws, "--set", "filter.threshold=11"])
    expect(rerun.summary?.status).toBe("succeeded")
    expect(executedStages(rerun.summary)).toEqual(["filter"])
    expect(rerun.summary?.cached).toBe(6)
  })

  it("detects a deleted or edited output and reruns its stage", async () => {
    const ws = tempWorkspace()
    await runJson(["toy", "--workspace", ws])
    const [kept] = artifactFiles(ws, "filter")
    fs.rmSync(kept!)
    const plan = await cli(["plan", "toy", "--workspace", ws])
    expect(plan.stdout).toMatch(/STALE {2}filter.*output kept\.json is missing/)
    const afterDelete = await runJson(["toy", "--workspace", ws])
    // The rerun reproduces the same bytes, so nothing downstream reruns.
    expect(executedStages(afterDelete.summary)).toEqual(["filter"])

    const [numbers] = artifactFiles(ws, "generate")
    fs.writeFileSync(numbers!, "[1,2,3]\n")
    const plan2 = await cli(["plan", "toy", "--workspace", ws])
    expect(plan2.stdout).toMatch(/STALE {2}generate.*output numbers\.json was modified/)
    const afterEdit = await runJson(["toy", "--workspace", ws])
    expect(executedStages(afterEdit.summary)).toEqual(["generate"])
    expect(JSON.parse(fs.readFileSync(numbers!, "utf8"))).toHaveLength(100)
  })

  it("survives SIGKILL mid-stage: nothing partial is promoted, the database is sound, the next run finishes", async () => {
    const ws = tempWorkspace()
    const child = execa(process.execPath, [bin, "run", "toy", "--workspace", ws, "--set", "sum.sleepMs=100"], {
      cwd: root,
      reject: false
    })
    await waitFor(() => stagingHasSum(ws))
    await new Promise((r) => setTimeout(r, 500))
    child.kill("SIGKILL")
    await child
    expect(artifactFiles(ws, "sum")).toEqual([])
    const db = new Database(path.join(ws, "lineage.sqlite"))
    expect(db.pragma("integrity_check", { simple: true })).toBe("ok")
    const running = db.prepare("select stage_id from executions where status = 'running'").all()
    expect(running).toEqual([{ stage_id: "sum" }])
    db.close()

    const next = await runJson(["toy", "--workspace", ws, "--set", "sum.sleepMs=100"])
    expect(next.summary?.status).toBe("succeeded")
    expect(executedStages(next.summary)).toEqual(["report", "sum"])
    const after = new Database(path.join(ws, "lineage.sqlite"), { readonly: true })
    const statuses = after.prepare("select status from executions where stage_id = 'sum' order by started_at").all()
    expect(statuses).toEqual([{ status: "interrupted" }, { status: "succeeded" }])
    after.close()
  })

  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    it(`on ${signal}, stops the worker's process group, records the run as interrupted and exits 130`, async () => {
      const ws = tempWorkspace()
      const child = execa(process.execPath, [bin, "run", "toy", "--workspace", ws, "--set", "sum.sleepMs=100"], {
        cwd: root,
        reject: false
      })
      const workerPid = () => {
        if (!fs.existsSync(path.join(ws, "lineage.sqlite"))) return null
        const db = new Database(path.join(ws, "lineage.sqlite"), { readonly: true })
        try {
          const row = db.prepare("select worker_pid as pid from executions where stage_id = 'sum'").get() as
            | { pid: number | null }
            | undefined
          return row?.pid ?? null
        } catch {
          return null
        } finally {
          db.close()
        }
      }
      await waitFor(() => workerPid() !== null)
      const pid = workerPid()!
      child.kill(signal)
      const ended = await child
      expect(ended.exitCode, ended.stderr.slice(-2000)).toBe(130)
      // The worker led its own process group; nothing of it is left.
      expect(() => process.kill(-pid, 0)).toThrow()
      const db = new Database(path.join(ws, "lineage.sqlite"), { readonly: true })
      expect(db.prepare("select status from executions where stage_id = 'sum'").all()).toEqual([
        { status: "interrupted" }
      ])
      expect(db.prepare("select status from runs").all()).toEqual([{ status: "interrupted" }])
      db.close()
      expect(artifactFiles(ws, "sum")).toEqual([])
    })
  }

  it("on SIGINT during a plain command (the kernel build), records the interruption and leaves no make behind", async () => {
    const ws = tempWorkspace()
    const child = execa(process.execPath, [bin, "run", "scaling-suite", "--preset", "tiny", "--workspace", ws], {
      cwd: root,
      reject: false
    })
    const makes = () => {
      const found = spawnSync("pgrep", ["-f", `make -C ${ws}`], { encoding: "utf8" })
      return found.stdout.split("\n").filter((l) => l.trim() !== "")
    }
    await waitFor(() => makes().length > 0, 120_000)
    child.kill("SIGINT")
    const ended = await child
    expect(ended.exitCode, ended.stderr.slice(-2000)).toBe(130)
    expect(makes()).toEqual([])
    const db = new Database(path.join(ws, "lineage.sqlite"), { readonly: true })
    expect(db.prepare("select status from executions where stage_id = 'compile-kernels'").all()).toEqual([
      { status: "interrupted" }
    ])
    expect(db.prepare("select status from runs").all()).toEqual([{ status: "interrupted" }])
    db.close()
  })

  it("refuses a second concurrent run on the same workspace, and --wait waits for it", async () => {
    const ws = tempWorkspace()
    const first = execa(process.execPath, [bin, "run", "toy", "--workspace", ws, "--set", "sum.sleepMs=100"], {
      cwd: root,
      reject: false
    })
    await waitFor(() => stagingHasSum(ws))
    const refused = await cli(["run", "toy", "--workspace", ws, "--set", "sum.sleepMs=100"])
    expect(refused.exitCode).not.toBe(0)
    expect(refused.stderr).toMatch(/workspace .* is in use by 'flame-pipe run toy/)
    const waited = await runJson(["toy", "--workspace", ws, "--set", "sum.sleepMs=100", "--wait"])
    expect((await first).exitCode).toBe(0)
    expect(waited.summary?.status).toBe("succeeded")
    expect(waited.summary?.executed).toBe(0)
  })

  it("records a failing worker with its exit code and log tail, and stops", async () => {
    const ws = tempWorkspace()
    const { result, summary } = await runJson(["toy", "--workspace", ws, "--set", "sum.failAt=5"])
    expect(result.exitCode).toBe(1)
    expect(summary?.status).toBe("failed")
    const sum = summary?.stages.find((s) => s.stage === "sum")
    expect(sum?.status).toBe("failed")
    expect(sum?.error).toContain("exit code 3")
    expect(result.stderr).toContain("failing on purpose at step 5")
    expect(summary?.stages.find((s) => s.stage === "report")?.status).toBe("skipped")
    const show = await cli(["show", "sum", "--workspace", ws])
    expect(show.stdout).toContain("status      failed (exit 3)")
  })

  it("turns a malformed protocol line into a worker error", async () => {
    const ws = tempWorkspace()
    const { summary } = await runJson(["toy", "--workspace", ws, "--set", "sum.badProtocol=true"])
    expect(summary?.stages.find((s) => s.stage === "sum")?.error).toContain("malformed protocol message")
  })

  it("gives clear errors for invalid params, unknown pipelines, unknown stages and cycles", async () => {
    const ws = tempWorkspace()
    const badValue = await cli(["run", "toy", "--workspace", ws, "--set", "filter.threshold=abc"])
    expect(badValue.exitCode).not.toBe(0)
    expect(badValue.stderr).toContain("stage filter, param 'threshold'")
    const badKey = await cli(["run", "toy", "--workspace", ws, "--set", "generate.cuont=3"])
    expect(badKey.exitCode).not.toBe(0)
    expect(badKey.stderr).toContain("stage generate, param 'cuont'")
    const badStage = await cli(["plan", "toy", "--workspace", ws, "--set", "nope.x=1"])
    expect(badStage.stderr).toContain("no stage 'nope'")
    const unknown = await cli(["run", "no-such-pipeline", "--workspace", ws])
    expect(unknown.exitCode).not.toBe(0)
    expect(unknown.stderr).toContain("unknown pipeline 'no-such-pipeline'")
    const cycle = await cli(["plan", path.join(root, "test/fixtures/pipelines/cycle.ts"), "--workspace", ws])
    expect(cycle.exitCode).not.toBe(0)
    expect(cycle.stderr).toMatch(/cycle between stages: (a -> b -> c -> a|b -> c -> a -> b|c -> a -> b -> c)/)
    // Nothing ran, nothing was recorded.
    expect(fs.existsSync(path.join(ws, "artifacts"))).toBe(false)
  })

  it("plan and run refuse a param the worker would refuse, or one that leaves the workspace, in one line", async () => {
    const ws = tempWorkspace()
    const cases = [
      [
        "train/flame-moe-38m-tiny.model.topK=100",
        "stage train/flame-moe-38m-tiny, param 'model.topK': 100 exceeds the 64 experts"
      ],
      ["train/flame-moe-38m-tiny.warmupFraction=2", "stage train/flame-moe-38m-tiny, param 'warmupFraction'"],
      [
        "tokenize/dclm-tiny-0000.name=../../../../../../ESCAPED-shard",
        "stage tokenize/dclm-tiny-0000, param 'name': '../../../../../../ESCAPED-shard' must be a plain file name"
      ]
    ] as const
    for (const [set, message] of cases) {
      for (const command of ["plan", "run"]) {
        const result = await cli([command, "scaling-suite", "--preset", "tiny", "--workspace", ws, "--set", set])
        expect(result.exitCode, `${command} --set ${set}`).toBe(1)
        expect(result.stderr).toContain(message)
        expect(result.stderr).not.toMatch(/\n\s+at /)
      }
    }
    // Refused before anything ran: nothing built, nothing written next to or above the workspace.
    expect(fs.existsSync(path.join(ws, "artifacts"))).toBe(false)
    expect(fs.existsSync(path.join(ws, "staging"))).toBe(false)
    for (let dir = ws; dir !== path.dirname(dir); dir = path.dirname(dir)) {
      expect(fs.readdirSync(dir).filter((f) => f.startsWith("ESCAPED-shard")), dir).toEqual([])
    }
  })

  it("prints lineage up and down, the DAG and execution details", async () => {
    const ws = tempWorkspace()
    await runJson(["toy", "--workspace", ws])
    const up = await cli(["lineage", "report", "--workspace", ws])
    expect(up.exitCode).toBe(0)
    expect(up.stdout).toContain("produced by generate")
    expect(up.stdout).toContain("input kept: artifact kept.json")
    const down = await cli(["lineage", "generate", "--workspace", ws, "--down"])
    expect(down.stdout).toContain("consumed as total by report")
    const dag = await cli(["dag", "toy", "--format", "dot"])
    expect(dag.stdout).toContain("\"filter\" -> \"square/1\"")
    const show = await cli(["show", "sum", "--workspace", ws])
    expect(show.stdout).toMatch(/partial_sum = \d+ @ 98/)
  })
})
