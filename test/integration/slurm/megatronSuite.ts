/**
 * What the tests that the suite closes on the Megatron backend share (megatron-local.test.ts on the
 * local executor, megatron.test.ts under Slurm): the `--set` arguments that switch a train stage of
 * pipelines/suite-megatron.ts to the test doubles, what a torch_dist checkpoint of two ranks holds,
 * and the checks that the evaluations, traces and report ran on the checkpoints the doubles saved.
 */
import Database from "better-sqlite3"
import * as fs from "node:fs"
import * as path from "node:path"
import { expect } from "vitest"
import { root } from "../../support/cli.ts"
import { SCALE } from "./pipelines/suite-megatron.ts"

export { SCALE }

/** The doubles' Megatron settings: one node with two "GPUs", expert parallelism 2 (as pipelines/megatron.ts). */
export const doublesMegatron = {
  path: path.join(root, "test", "doubles"),
  script: "fake-pretrain-gpt.mjs",
  torchrun: path.join(root, "test", "doubles", "fake-torchrun.mjs"),
  nodes: 1,
  gpusPerNode: 2,
  expertParallel: 2,
  cpusPerTask: 1,
  memoryMb: 2048,
  logInterval: 1,
  tokenizerModel: path.join(root, "fixtures", "tokenizer")
}

/**
 * `--set` arguments that train `stage` with the Megatron backend's doubles. (`--set` takes one stage id;
 * the suite's `train/*`, for the one scale here, is this one stage.) Two data-parallel ranks need the
 * tiny suite's 8-sequence batch in micro-batches of 4.
 */
export const onMegatronDoubles = (stage = `train/${SCALE}`): ReadonlyArray<string> => [
  "--set",
  `${stage}.backend=megatron`,
  "--set",
  `${stage}.megatron=${JSON.stringify(doublesMegatron)}`,
  "--set",
  `${stage}.microBatchSize=4`
]

/**
 * Megatron's torch_dist layout as the doubles save it for `world` ranks: the .metadata pickle,
 * common.pt (args, iteration), metadata.json, and `__<rank>_<n>.distcp` blobs from every rank.
 */
export const expectTorchDist = (dir: string, world = 2) => {
  const files = fs.readdirSync(dir)
  expect(files).toEqual(expect.arrayContaining([".metadata", "common.pt", "metadata.json"]))
  const blobs = files.filter((f) => f.endsWith(".distcp"))
  expect(blobs.every((f) => /^__\d+_\d+\.distcp$/.test(f)), blobs.join(" ")).toBe(true)
  const ranks = new Set(blobs.map((f) => Number(/^__(\d+)_/.exec(f)![1])))
  expect([...ranks].sort()).toEqual(Array.from({ length: world }, (_, r) => r))
  expect(files.filter((f) => !blobs.includes(f)).sort()).toEqual([".metadata", "common.pt", "metadata.json"])
}

/** The absolute path of output `name` of `stage`'s latest successful execution. */
export const artifactOf = (ws: string, stage: string, name: string): string => {
  const db = new Database(path.join(ws, "lineage.sqlite"), { readonly: true })
  try {
    const row = db.prepare(
      `select a.path from artifacts a join executions e on e.id = a.execution_id
       where e.stage_id = ? and a.name = ? and e.status = 'succeeded' order by e.started_at desc limit 1`
    ).get(stage, name) as { path: string } | undefined
    if (row === undefined) throw new Error(`no artifact ${stage}:${name} in ${ws}`)
    return path.join(ws, row.path)
  } finally {
    db.close()
  }
}

export const stageLog = (ws: string, stage: string): string => {
  const dir = path.join(ws, "logs", stage)
  return fs.readdirSync(dir).filter((f) => fs.statSync(path.join(dir, f)).isFile()).map((f) =>
    fs.readFileSync(path.join(dir, f), "utf8")
  ).join("\n")
}

/**
 * The evaluations and traces of `steps` ran on the doubles' checkpoints: each checkpoint is Megatron's
 * torch_dist layout, each eval imported it (its log says so) and scored it with a finite validation
 * loss near ln(vocabulary), as a random model does; different checkpoints give different losses; each
 * trace wrote its routing records.
 */
export const expectSuiteOnMegatron = (ws: string, steps: ReadonlyArray<number>) => {
  const losses: Array<number> = []
  for (const step of steps) {
    const iter = `iter_${String(step).padStart(7, "0")}`
    const checkpoint = artifactOf(ws, `train/${SCALE}`, iter)
    expectTorchDist(checkpoint)
    const evaluation = JSON.parse(fs.readFileSync(artifactOf(ws, `eval/${SCALE}/${step}`, "eval.json"), "utf8")) as {
      step: number
      validationLoss: number
    }
    expect(evaluation.step).toBe(step)
    expect(Number.isFinite(evaluation.validationLoss)).toBe(true)
    // The tiny suite's vocabulary: the fixture tokenizer's 2583 ids, padded by Megatron to 2688.
    expect(Math.abs(evaluation.validationLoss - Math.log(2688))).toBeLessThan(0.5)
    losses.push(evaluation.validationLoss)
    for (const stage of [`eval/${SCALE}/${step}`, `trace/${SCALE}/${step}`]) {
      expect(stageLog(ws, stage)).toMatch(
        new RegExp(`imported torch_dist checkpoint \\S+/${iter} at iteration ${step}: \\d+ tensors`)
      )
    }
    const trace = artifactOf(ws, `trace/${SCALE}/${step}`, "trace.bin")
    expect(fs.statSync(trace).size).toBeGreaterThan(0)
  }
  expect(new Set(losses).size).toBe(losses.length)
}
