/**
 * The cool-down fixture pipeline (test/fixtures/pipelines/cooldown.ts) as the seeding tests run it:
 * its CLI arguments over a synthetic dataset, and the bytes of a checkpoint a stage recorded.
 */
import Database from "better-sqlite3"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { syntheticCorpus, workerPath, writeIndexedDataset } from "../integration/worker/helpers.ts"
import { root } from "./cli.ts"

const pipeline = path.join(root, "test", "fixtures", "pipelines", "cooldown.ts")

/** Writes the synthetic dataset the fixture trains on into `dir`. */
export const writeCooldownData = (dir: string): void =>
  writeIndexedDataset(path.join(dir, "synthetic_text_document"), syntheticCorpus(400, 64, 7))

/** The pipeline, a preset and workspace, the dataset in `data` and the built worker. */
export const cooldownArgs = (data: string, ws: string, preset: string, ...more: Array<string>) => [
  pipeline,
  "--preset",
  preset,
  "--workspace",
  ws,
  "--config",
  `data=${data}`,
  "--config",
  `worker=${workerPath}`,
  ...more
]

/** sha256 of each file of the checkpoint `name` of a stage's latest successful execution. */
export const checkpointFiles = (ws: string, stage: string, name: string): Record<string, string> => {
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
