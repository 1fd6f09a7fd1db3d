/**
 * Seeding under the Slurm executor: the engine picks the checkpoint a cool-down branch starts from and
 * links the branch's reused checkpoints; the batch job gets the seed in its job spec and trains only
 * the anneal, ending byte-identical to the branch trained from scratch on this machine.
 */
import Database from "better-sqlite3"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { beforeAll, expect, it } from "vitest"
import { cli, root, runJson, tempWorkspace } from "../../support/cli.ts"
import { syntheticCorpus, workerPath, writeIndexedDataset } from "../worker/helpers.ts"
import { describeSlurm, requireCluster, slurm } from "./cluster.ts"

const pipeline = path.join(root, "test", "fixtures", "pipelines", "cooldown.ts")
const data = tempWorkspace("fp-slurm-seed-data-")
const args = (ws: string, preset: string) => [
  pipeline,
  "--preset",
  preset,
  "--workspace",
  ws,
  "--config",
  `data=${data}`,
  "--config",
  `worker=${workerPath}`
]

/** sha256 of each file of a stage's recorded checkpoint. */
const checkpointFiles = (ws: string, stage: string, name: string): Record<string, string> => {
  const db = new Database(path.join(ws, "lineage.sqlite"), { readonly: true })
  const row = db.prepare(`
    select a.path from artifacts a join executions e on a.execution_id = e.id
    where e.stage_id = ? and e.status = 'succeeded' and a.name = ? order by e.started_at desc limit 1`)
    .get(stage, name) as { path: string }
  db.close()
  const dir = path.join(ws, row.path)
  return Object.fromEntries(
    fs.readdirSync(dir).sort().map((f) => [
      f,
      crypto.createHash("sha256").update(fs.readFileSync(path.join(dir, f))).digest("hex")
    ])
  )
}

describeSlurm("seeding on Slurm", () => {
  beforeAll(async () => {
    await requireCluster()
    writeIndexedDataset(path.join(data, "synthetic_text_document"), syntheticCorpus(400, 64, 7))
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
