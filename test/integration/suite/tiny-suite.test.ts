/**
 * The main job end to end: `flame-pipe run scaling-suite --preset tiny`, through the real CLI and
 * worker, on the bundled corpus. The tests share one workspace and run in order.
 */
import Database from "better-sqlite3"
import { execa } from "execa"
import * as fs from "node:fs"
import * as path from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { scales } from "../../../src/flame/scales.ts"
import { bin, cli, executedStages, root, runJson, tempWorkspace } from "../../support/cli.ts"

const SCALE = "flame-moe-38m-tiny"
const ws = tempWorkspace("fp-suite-")
const suite = ["scaling-suite", "--preset", "tiny", "--workspace", ws]

const db = () => new Database(path.join(ws, "lineage.sqlite"), { readonly: true })

const stagingCheckpoints = (): Array<string> => {
  const dir = path.join(ws, "staging", "train", SCALE)
  if (!fs.existsSync(dir)) return []
  return fs.readdirSync(dir).flatMap((fp) =>
    fs.readdirSync(path.join(dir, fp)).filter((f) =>
      /^iter_\d{7}$/.test(f) && fs.existsSync(path.join(dir, fp, f, "state.json"))
    )
  )
}

describe("scaling-suite --preset tiny", () => {
  let first: Awaited<ReturnType<typeof runJson>>

  beforeAll(async () => {
    first = await runJson(suite)
  }, 1_200_000)

  it("completes, and the loss falls", () => {
    expect(first.result.exitCode, first.result.stderr.slice(-3000)).toBe(0)
    expect(first.summary?.failed).toBe(0)
    expect(first.summary?.executed).toBe(first.summary?.stages.length)
    const conn = db()
    for (const scale of ["flame-moe-38m-tiny", "flame-moe-1.7b-tiny"]) {
      const losses = conn.prepare(`
        select m.value from metrics m join executions e on m.execution_id = e.id
        where e.stage_id = ? and m.name = 'loss' order by m.step`).all(`train/${scale}`) as Array<{ value: number }>
      const head = losses.slice(0, 3).reduce((a, r) => a + r.value, 0) / 3
      const tail = losses.slice(-3).reduce((a, r) => a + r.value, 0) / 3
      expect(tail).toBeLessThan(head - 0.5)
    }
    conn.close()
    const table = fs.readFileSync(path.join(ws, findArtifact("suite/table", "table.md")), "utf8")
    expect(table).toContain("flame-moe-1.7b-tiny")
  })

  it("analyses co-activation and specialization at every checkpoint, and the report shows them over training", () => {
    const stages = first.summary!.stages.map((s) => s.stage)
    const html = fs.readFileSync(path.join(ws, findArtifact("suite/report", "report.html")), "utf8")
    for (const scale of scales.map((s) => `${s.id}-tiny`)) {
      // 10 interval checkpoints and the final one: the final's analyses keep their ids, the others get a step.
      const own = stages.filter((s) => s.startsWith(`analysis/${scale}/`))
      expect(own.filter((s) => s.startsWith(`analysis/${scale}/coactivation`)), scale).toHaveLength(11)
      expect(own.filter((s) => s.startsWith(`analysis/${scale}/specialization/`)), scale).toHaveLength(10)
      expect(own, scale).toContain(`analysis/${scale}/specialization-tracking`)
      const tracking = JSON.parse(
        fs.readFileSync(
          path.join(ws, findArtifact(`analysis/${scale}/specialization-tracking`, "specialization-tracking.json")),
          "utf8"
        )
      ) as { steps: Array<number>; minOccurrences: number; topTokens: number; perLayer: Array<{ layer: number }> }
      expect(tracking.steps, scale).toHaveLength(11)
      expect([tracking.minOccurrences, tracking.topTokens]).toEqual([5, 2])
      expect(tracking.perLayer[0]!.layer, scale).toBe(2)
      expect(html, scale).toContain(`data-figure="coactivation-over-training-${scale}"`)
      expect(html, scale).toContain(`data-figure="specialization-over-training-${scale}"`)
      expect(html, scale).toContain(`id="specialization-tracked-${scale}"`)
    }
    expect(html).toContain(`id="routing-over-training"`)
    // Tokens decoded with the suite's tokenizer: a quoted text then the id.
    expect(html).toMatch(/<td>&quot;[^<]*&quot; \(\d+\)<\/td>/)
  })

  it("a second run executes nothing", async () => {
    const again = await runJson(suite)
    expect(again.summary?.executed).toBe(0)
    expect(again.summary?.cached).toBe(first.summary?.stages.length)
  })

  it("every artifact has a lineage path back to the corpus shards, the tokenizer and the kernel sources", () => {
    const conn = db()
    const producerInputs = conn.prepare(`
      select ei.artifact_id as id, e.stage_id as stage from artifacts a
      join executions e on a.execution_id = e.id
      join execution_inputs ei on ei.execution_id = e.id where a.id = ?`)
    const stageOf = conn.prepare(
      `select e.stage_id as stage from artifacts a join executions e on a.execution_id = e.id where a.id = ?`
    )
    const artifacts = conn.prepare("select id from artifacts").all() as Array<{ id: string }>
    const memo = new Map<string, Set<string>>()
    const sources = (id: string): Set<string> => {
      const known = memo.get(id)
      if (known) return known
      const own = (stageOf.get(id) as { stage: string }).stage
      const found = new Set<string>(own.startsWith("source/") ? [own] : [])
      for (const input of producerInputs.all(id) as Array<{ id: string }>) {
        for (const s of sources(input.id)) found.add(s)
      }
      memo.set(id, found)
      return found
    }
    for (const { id } of artifacts) {
      const stage = (stageOf.get(id) as { stage: string }).stage
      if (stage.startsWith("source/")) continue
      const found = [...sources(id)]
      if (stage === "eval/requests") {
        // The tokenized task prompts come from the task files and the tokenizer alone.
        expect(found, stage).toContain("source/tokenizer")
        expect(found, stage).toContain("source/tasks")
        continue
      }
      if (
        stage.startsWith("train/") || stage.startsWith("eval/") || stage.startsWith("trace/") ||
        stage.startsWith("analysis/") || stage === "suite/table" || stage === "suite/report"
      ) {
        expect(found.some((s) => s.startsWith("source/corpus/")), stage).toBe(true)
        expect(found, stage).toContain("source/tokenizer")
        expect(found, stage).toContain("source/kernels/src")
      }
    }
    conn.close()
  })

  it("--set on one scale's lr reruns exactly that scale's train, eval and trace stages and the table", async () => {
    const planned = await cli(["plan", ...suite, "--set", `train/${SCALE}.lr=0.002`, "--json"])
    const stale = (JSON.parse(planned.stdout) as { stages: Array<{ stage: string; status: string }> }).stages
      .filter((s) => s.status === "stale").map((s) => s.stage).sort()
    // Exactly: this scale's train, its 11 evals, 11 traces (10 interval checkpoints and the final one)
    // and 25 routing analyses (saturation, load balance, co-activation and specialization at each of the
    // 11 checkpoints, the specialization tracking), the suite table and report.
    expect(stale).toContain(`train/${SCALE}`)
    expect(stale.filter((s) => !s.includes(SCALE))).toEqual(["suite/report", "suite/table"])
    expect(stale.filter((s) => s.startsWith(`eval/${SCALE}/`))).toHaveLength(11)
    expect(stale.filter((s) => s.startsWith(`trace/${SCALE}/`))).toHaveLength(11)
    expect(stale.filter((s) => s.startsWith(`analysis/${SCALE}/`))).toHaveLength(25)
    expect(stale).toHaveLength(50)

    // Interrupt the training: kill the CLI once a few checkpoints are in the staging area.
    const child = execa(process.execPath, [bin, "run", ...suite, "--set", `train/${SCALE}.lr=0.002`], {
      cwd: root,
      reject: false
    })
    const start = Date.now()
    while (stagingCheckpoints().length < 3) {
      if (Date.now() - start > 300_000) throw new Error("training never wrote 3 checkpoints")
      await new Promise((r) => setTimeout(r, 50))
    }
    child.kill("SIGKILL")
    await child
    const reusable = stagingCheckpoints().length
    expect(reusable).toBeGreaterThanOrEqual(3)
    // The plan says the training resumes, and from which checkpoint, rather than "never run". The
    // killed CLI's worker may still be writing checkpoints (the next run stops it): at least this one.
    const newest = stagingCheckpoints().sort().at(-1)!
    const replanned = await cli(["plan", ...suite, "--set", `train/${SCALE}.lr=0.002`])
    const resumesFrom = new RegExp(
      `STALE {2}train/${SCALE}.*resumes interrupted execution [0-9a-f]{8} from (iter_\\d{7})`
    )
      .exec(replanned.stdout)
    expect(resumesFrom, replanned.stdout).not.toBeNull()
    expect(resumesFrom![1]! >= newest).toBe(true)

    const resumed = await runJson([...suite, "--set", `train/${SCALE}.lr=0.002`])
    expect(resumed.summary?.status).toBe("succeeded")
    expect(executedStages(resumed.summary)).toEqual(stale)
    const train = resumed.summary!.stages.find((s) => s.stage === `train/${SCALE}`)!
    const show = JSON.parse((await cli(["show", train.execution!, "--workspace", ws, "--json"])).stdout) as {
      execution: { resumedFrom: string | null; result: { startIteration: number; reusedCheckpoints: Array<string> } }
    }
    expect(show.execution.resumedFrom).not.toBeNull()
    expect(show.execution.result.startIteration).toBeGreaterThan(0)
    expect(show.execution.result.reusedCheckpoints.length).toBeGreaterThanOrEqual(reusable)
    const lineage = await cli(["lineage", train.execution!, "--workspace", ws])
    expect(lineage.stdout).toContain("resumed")

    // The resumed training ends bit-identical to an uninterrupted one: an audit re-executes it from
    // scratch and compares every checkpoint byte for byte.
    const audit = await cli(["audit", `train/${SCALE}`, "--workspace", ws, "--stages", `train/${SCALE}`, "--json"], {
      timeout: 600_000
    })
    expect(audit.exitCode, audit.stdout.slice(-2000) + audit.stderr.slice(-2000)).toBe(0)
    const report = JSON.parse(audit.stdout) as {
      reexecution: { results: Array<{ stage: string; status: string; reproducibility: string }> }
    }
    expect(report.reexecution.results.find((r) => r.stage === `train/${SCALE}`)).toMatchObject({
      status: "reproduced",
      reproducibility: "bitwise"
    })
  })

  it("--set on one scale's minLr retrains only the anneal's tail and reruns what reads the new checkpoints", async () => {
    // 21 iterations, checkpoints every 2 and at 21; the anneal covers the last 2 (lr after 19 and 20
    // steps): every checkpoint up to iter_0000020 is the same under any minLr.
    const set = ["--set", `train/${SCALE}.minLr=0.0001`]
    const planned = await cli(["plan", ...suite, ...set, "--json"])
    const stages = (JSON.parse(planned.stdout) as {
      stages: Array<{ stage: string; status: string; reasons: Array<Record<string, unknown>> }>
    }).stages
    const train = stages.find((s) => s.stage === `train/${SCALE}`)!
    expect(train.reasons.find((r) => r["_tag"] === "Seeded")).toMatchObject({
      stage: `train/${SCALE}`,
      output: "iter_0000020",
      step: 20,
      total: 21
    })
    const human = await cli(["plan", ...suite, ...set])
    expect(human.stdout).toMatch(
      new RegExp(
        `train/${SCALE}.*resumes from train/${SCALE} iter_0000020: 20 of 21 steps reused \\(execution [0-9a-f]{8}`
      )
    )
    const stale = stages.filter((s) => s.status === "stale").map((s) => s.stage).sort()
    // What reads a reused checkpoint stays fresh; what reads the final one, or everything, reruns.
    expect(stale.filter((s) => s.startsWith(`eval/${SCALE}/`))).toEqual([`eval/${SCALE}/21`])
    expect(stale.filter((s) => s.startsWith(`trace/${SCALE}/`))).toEqual([`trace/${SCALE}/21`])
    expect(stale.filter((s) => !s.includes(SCALE))).toEqual(["suite/report", "suite/table"])

    const rerun = await runJson([...suite, ...set])
    expect(rerun.summary?.status).toBe("succeeded")
    expect(executedStages(rerun.summary)).toEqual(stale)
    const execution = rerun.summary!.stages.find((s) => s.stage === `train/${SCALE}`)!.execution!
    const show = JSON.parse((await cli(["show", execution, "--workspace", ws, "--json"])).stdout) as {
      execution: { seededStep: number | null; result: { startIteration: number; seedIteration?: number } }
    }
    expect(show.execution.seededStep).toBe(20)
    expect(show.execution.result).toMatchObject({ startIteration: 20, seedIteration: 20 })
  })
})

/** Workspace-relative path of a stage's latest recorded output. */
function findArtifact(stage: string, name: string): string {
  const conn = db()
  const row = conn.prepare(`
    select a.path from artifacts a join executions e on a.execution_id = e.id
    where e.stage_id = ? and a.name = ? order by e.started_at desc limit 1`).get(stage, name) as { path: string }
  conn.close()
  return row.path
}
