/**
 * Seeding under the Slurm executor: the engine picks the checkpoint a cool-down branch starts from and
 * links the branch's reused checkpoints; the batch job gets the seed in its job spec and trains only
 * the anneal, ending byte-identical to the branch trained from scratch on this machine.
 */
import { beforeAll, expect, it } from "vitest"
import { cli, runJson, tempWorkspace } from "../../support/cli.ts"
import { checkpointFiles, cooldownArgs, writeCooldownData } from "../../support/cooldownFixture.ts"
import { describeSlurm, requireCluster, slurm } from "./cluster.ts"

const data = tempWorkspace("fp-slurm-seed-data-")
const args = (ws: string, preset: string, ...more: Array<string>) => cooldownArgs(data, ws, preset, ...more)

describeSlurm("seeding on Slurm", () => {
  beforeAll(async () => {
    await requireCluster()
    writeCooldownData(data)
  })

  it("a branch's batch job starts from the constant run's checkpoint and ends as the branch from scratch", async () => {
    const ws = tempWorkspace("fp-slurm-seed-")
    const grid = await runJson([...args(ws, "grid"), ...slurm])
    expect(grid.summary?.status, grid.result.stderr.slice(-3000)).toBe("succeeded")
    const branch = grid.summary!.stages.find((s) => s.stage === "train/branch")!
    const shown = JSON.parse((await cli(["show", branch.execution!, "--workspace", ws, "--json"])).stdout) as {
      execution: { executor: string; seededStep: number | null; result: Record<string, unknown> }
    }
    expect(shown.execution).toMatchObject({ executor: "slurm", seededStep: 18 })
    expect(shown.execution.result).toMatchObject({ startIteration: 18, seedIteration: 18 })

    const scratch = tempWorkspace("fp-slurm-seed-scratch-")
    const alone = await runJson(args(scratch, "branch"))
    expect(alone.summary?.status).toBe("succeeded")
    for (const step of ["iter_0000006", "iter_0000012", "iter_0000018", "iter_0000020"]) {
      expect(checkpointFiles(ws, "train/branch", step), step).toEqual(checkpointFiles(scratch, "train/branch", step))
    }
  }, 600_000)
})
