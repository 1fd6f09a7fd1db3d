/**
 * Checkpoints as partial cache hits, through the real CLI and worker: a cool-down branch starts from
 * the constant-rate run's checkpoint at its anneal and ends byte-identical to a run from scratch; a
 * variant with another lr is not seeded; plan names the seed; an interrupted seeded stage resumes from
 * its own newest checkpoint.
 */
import { execa } from "execa"
import * as fs from "node:fs"
import * as path from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { bin, cli, executedStages, root, runJson, tempWorkspace } from "../../support/cli.ts"
import { checkpointFiles, cooldownArgs, writeCooldownData } from "../../support/cooldownFixture.ts"

const data = tempWorkspace("fp-seed-data-")

const args = (ws: string, preset: string, ...more: Array<string>) => cooldownArgs(data, ws, preset, ...more)

interface SeededReason {
  readonly _tag: "Seeded"
  readonly stage: string
  readonly output: string
  readonly execution: string | null
  readonly step: number
  readonly total: number
}

const planOf = async (ws: string, preset: string, ...more: Array<string>) => {
  const planned = await cli(["plan", ...args(ws, preset, ...more), "--json"])
  expect(planned.exitCode, planned.stderr).toBe(0)
  return (JSON.parse(planned.stdout) as {
    stages: Array<{ stage: string; status: string; reasons: Array<{ _tag: string }> }>
  }).stages
}

const seededReason = (stages: Awaited<ReturnType<typeof planOf>>, id: string) =>
  stages.find((s) => s.stage === id)?.reasons.find((r) => r._tag === "Seeded") as SeededReason | undefined

const resultOf = async (ws: string, execution: string) =>
  (JSON.parse((await cli(["show", execution, "--workspace", ws, "--json"])).stdout) as {
    execution: { seededFrom: string | null; seededStep: number | null; result: Record<string, unknown> }
  }).execution

describe("seeding a train stage from a shared checkpoint", () => {
  beforeAll(() => {
    writeCooldownData(data)
  })

  it("plans, runs and records a cool-down branch from the constant run's checkpoint", async () => {
    const ws = tempWorkspace("fp-seed-grid-")
    // With the inputs imported (their hashes known) and no training recorded yet, the branch will start
    // from what the constant run, earlier in the same run, writes.
    expect((await runJson(args(ws, "sources"))).summary?.status).toBe("succeeded")
    const before = await planOf(ws, "grid")
    expect(seededReason(before, "train/branch")).toMatchObject({
      stage: "train/const",
      output: "iter_0000018",
      execution: null,
      step: 18,
      total: 20
    })
    // Another lr changes every step from the second: nothing to share.
    expect(seededReason(before, "train/other-lr")).toBeUndefined()

    const first = await runJson(args(ws, "grid"))
    expect(first.summary?.status, first.result.stderr.slice(-2000)).toBe("succeeded")
    const branch = first.summary!.stages.find((s) => s.stage === "train/branch")!
    const recorded = await resultOf(ws, branch.execution!)
    expect(recorded.seededStep).toBe(18)
    expect(recorded.seededFrom).not.toBeNull()
    expect(recorded.result["startIteration"]).toBe(18)
    expect(recorded.result["seedIteration"]).toBe(18)
    const other = await resultOf(ws, first.summary!.stages.find((s) => s.stage === "train/other-lr")!.execution!)
    expect(other.seededFrom).toBeNull()
    expect(other.result["startIteration"]).toBe(0)

    // The lineage of the branch goes through the checkpoint it was seeded from.
    const lineage = await cli(["lineage", branch.execution!, "--workspace", ws])
    expect(lineage.stdout).toMatch(/seeded at step 18 from: artifact iter_0000018/)
    expect(lineage.stdout).toContain("train/const")

    // The same branch trained from scratch, in a workspace of its own, writes the same bytes: the
    // checkpoints it shares with the constant run and the final one it trained.
    const scratch = tempWorkspace("fp-seed-scratch-")
    const alone = await runJson(args(scratch, "branch"))
    expect(alone.summary?.status).toBe("succeeded")
    const fromScratch = await resultOf(
      scratch,
      alone.summary!.stages.find((s) => s.stage === "train/branch")!.execution!
    )
    expect(fromScratch.result["startIteration"]).toBe(0)
    for (const step of ["iter_0000006", "iter_0000012", "iter_0000018", "iter_0000020"]) {
      expect(checkpointFiles(ws, "train/branch", step), step).toEqual(checkpointFiles(scratch, "train/branch", step))
    }
    // A checkpoint describes its state, not the rest of the run: the constant run's are the same bytes.
    for (const step of ["iter_0000006", "iter_0000012", "iter_0000018"]) {
      expect(checkpointFiles(ws, "train/branch", step), step).toEqual(checkpointFiles(ws, "train/const", step))
    }

    // A new minLr for the branch: recorded checkpoints now, so plan names the execution and reuses 18 steps.
    const changed = await planOf(ws, "grid", "--set", "train/branch.minLr=0.0002")
    const seeded = seededReason(changed, "train/branch")
    expect(seeded).toMatchObject({ output: "iter_0000018", step: 18, total: 20 })
    expect(seeded?.execution).not.toBeNull()
    const human = await cli(["plan", ...args(ws, "grid", "--set", "train/branch.minLr=0.0002")])
    expect(human.stdout).toMatch(
      /train\/branch.*resumes from train\/(const|branch) iter_0000018: 18 of 20 steps reused/
    )
    const rerun = await runJson(args(ws, "grid", "--set", "train/branch.minLr=0.0002"))
    expect(executedStages(rerun.summary)).toEqual(["train/branch"])

    // An audit re-executes the seeded branch from scratch and finds it bitwise the same.
    // The pipeline is a module path, whose stages the audit loads from the TypeScript sources; the
    // bundled CLI, which imports only the project's pipelines, says so.
    const bundled = await cli(["audit", "train/branch", "--workspace", ws, "--stages", "train/branch"])
    expect(bundled.exitCode).not.toBe(0)
    expect(bundled.stderr).toContain("FLAME_PIPE_FROM_SOURCES=1 flame-pipe audit")
    const audit = await execa(
      process.execPath,
      [bin, "audit", "train/branch", "--workspace", ws, "--stages", "train/branch", "--json"],
      { cwd: root, reject: false, env: { FLAME_PIPE_FROM_SOURCES: "1" } }
    )
    expect(audit.exitCode, audit.stdout.slice(-2000) + audit.stderr.slice(-2000)).toBe(0)
    const report = JSON.parse(audit.stdout) as {
      status: string
      reexecution: { results: Array<{ stage: string; status: string; reproducibility: string }> }
    }
    expect(report.status).toBe("passed")
    expect(report.reexecution.results.find((r) => r.stage === "train/branch")).toMatchObject({
      status: "reproduced",
      reproducibility: "bitwise"
    })
  }, 600_000)

  it("an interrupted seeded stage resumes from its own newest checkpoint", async () => {
    const ws = tempWorkspace("fp-seed-long-")
    const constOnly = await runJson(args(ws, "long-const"))
    expect(constOnly.summary?.status, constOnly.result.stderr.slice(-2000)).toBe("succeeded")
    // The half branch anneals over iterations 201..400: it starts from the constant run's iter_0000200.
    const staging = path.join(ws, "staging", "train", "half")
    const own = (): Array<string> =>
      fs.existsSync(staging)
        ? fs.readdirSync(staging).flatMap((fp) =>
          fs.readdirSync(path.join(staging, fp)).filter((f) =>
            /^iter_\d{7}$/.test(f) && Number(f.slice(5)) > 200 &&
            fs.existsSync(path.join(staging, fp, f, "state.json"))
          )
        )
        : []
    const child = execa(process.execPath, [bin, "run", ...args(ws, "long")], { cwd: root, reject: false })
    const start = Date.now()
    while (own().length < 1) {
      if (Date.now() - start > 300_000) throw new Error("the branch never wrote a checkpoint of its own")
      await new Promise((r) => setTimeout(r, 25))
    }
    child.kill("SIGKILL")
    await child
    const newest = own().sort().at(-1)!
    const replanned = await cli(["plan", ...args(ws, "long")])
    expect(replanned.stdout).toMatch(/train\/half.*resumes interrupted execution [0-9a-f]{8} from iter_\d{7}/)
    expect(replanned.stdout).toMatch(/train\/half.*resumes from train\/const iter_0000200: 200 of 400 steps reused/)
    const resumed = await runJson(args(ws, "long"))
    expect(resumed.summary?.status).toBe("succeeded")
    const half = await resultOf(ws, resumed.summary!.stages.find((s) => s.stage === "train/half")!.execution!)
    expect(half.result["seedIteration"]).toBe(200)
    expect(half.result["startIteration"] as number).toBeGreaterThanOrEqual(Number(newest.slice(5)))
  }, 600_000)
})
