/**
 * The cool-down grid against the grid it replaces, in one run: `flame-pipe run ablation --preset
 * cooldown-tiny` trains the tiny 80-run grid and the tiny cool-down grid (a constant-rate run per
 * shape, five branches seeded from its checkpoints), then this reads what each trained (lineage: every
 * train execution's iterations from the step it was seeded at) and what each fit predicts at the five
 * budgets (the two fit stages' fit.json), and prints the ratios.
 *
 *   npx tsx bench/cooldown/run.ts [--workspace DIR]   (default: a fresh one under the OS temp dir)
 *
 * A script, not a timed test. The peer is the grid itself: both grids train the same 16 shapes at the
 * same five budgets with the same data, worker and batch; only the schedule and the reuse differ.
 */
import Database from "better-sqlite3"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { parseArgs } from "node:util"

const { values: args } = parseArgs({ options: { workspace: { type: "string" } } })
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..", "..")
const workspace = path.resolve(args.workspace ?? fs.mkdtempSync(path.join(os.tmpdir(), "flame-bench-cooldown-")))

const t0 = performance.now()
const run = spawnSync(
  process.execPath,
  [path.join(root, "bin", "flame-pipe.js"), "run", "ablation", "--preset", "cooldown-tiny", "--workspace", workspace],
  { stdio: ["ignore", "inherit", "inherit"] }
)
if (run.status !== 0) throw new Error(`flame-pipe run exited with ${run.status}`)
console.log(`\nrun ablation --preset cooldown-tiny: ${((performance.now() - t0) / 1000).toFixed(1)} s (${workspace})`)

const db = new Database(path.join(workspace, "lineage.sqlite"), { readonly: true })

/** Tokens of the latest successful execution of each train stage under a prefix: trained, and from scratch. */
const tokens = (prefix: string) => {
  const rows = db.prepare(`
    select e.stage_id, e.params, e.seeded_step from executions e
    where e.status = 'succeeded' and e.stage_id like ? || '%'
    order by e.started_at desc`).all(prefix) as Array<{ stage_id: string; params: string; seeded_step: number | null }>
  const seen = new Set<string>()
  let trained = 0
  let scratch = 0
  let seeded = 0
  for (const row of rows) {
    if (seen.has(row.stage_id)) continue
    seen.add(row.stage_id)
    const p = JSON.parse(row.params) as { trainIters: number; globalBatchSize: number; model: { seqLength: number } }
    const perIteration = p.globalBatchSize * p.model.seqLength
    trained += (p.trainIters - (row.seeded_step ?? 0)) * perIteration
    scratch += p.trainIters * perIteration
    if (row.seeded_step !== null) seeded++
  }
  return { stages: seen.size, seeded, trained, scratch }
}

const grid = tokens("ablation/train/")
const cooldown = tokens("ablation/cooldown/train/")
const pct = (a: number, b: number) => `${((100 * a) / b).toFixed(1)}%`
console.log("\ntokens trained")
console.log(`  grid       ${grid.stages} runs: ${grid.trained.toLocaleString("en")}`)
console.log(
  `  cool-down  ${cooldown.stages} runs (${cooldown.seeded} seeded): ${cooldown.trained.toLocaleString("en")} ` +
    `(from scratch: ${cooldown.scratch.toLocaleString("en")})`
)
console.log(`  cool-down / grid: ${pct(cooldown.trained, grid.trained)}`)

/** The fit.json of a fit stage's latest successful execution. */
const fitOf = (stage: string) => {
  const row = db.prepare(`
    select a.path from artifacts a join executions e on a.execution_id = e.id
    where e.stage_id = ? and e.status = 'succeeded' and a.name = 'fit.json' order by e.started_at desc limit 1`)
    .get(stage) as { path: string }
  return JSON.parse(fs.readFileSync(path.join(workspace, row.path), "utf8")) as {
    fits: Array<{ method: string; computeOptimal: Array<{ flops: number; activeParams: number; loss: number }> }>
  }
}

const gridFit = fitOf("ablation/fit")
const cooldownFit = fitOf("ablation/cooldown/fit")
console.log("\nloss at the compute-optimal N*(C) of each budget, grid vs cool-down")
for (const fit of gridFit.fits) {
  const other = cooldownFit.fits.find((f) => f.method === fit.method)
  if (other === undefined) continue
  console.log(`  ${fit.method} fit`)
  fit.computeOptimal.forEach((point, i) => {
    const c = other.computeOptimal[i]!
    console.log(
      `    C ${point.flops.toExponential(3)}: ${point.loss.toFixed(4)} vs ${c.loss.toFixed(4)} ` +
        `(${c.loss - point.loss >= 0 ? "+" : ""}${(c.loss - point.loss).toFixed(4)}); ` +
        `N* ${point.activeParams.toFixed(0)} vs ${c.activeParams.toFixed(0)}`
    )
  })
}
db.close()
