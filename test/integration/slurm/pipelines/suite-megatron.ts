/**
 * `scaling-suite --preset tiny` for its smallest scale, as built by pipelines/scaling-suite.ts, for the
 * tests that the suite closes on the Megatron backend: the tests switch the training to
 * `backend: megatron` with `--set` (the doubles in test/doubles/ stand in for torchrun and
 * pretrain_gpt.py and save real torch_dist checkpoints of random weights), and the evaluations and
 * traces then import those checkpoints (stages/importMegatron.ts).
 *
 * Presets: `tiny` keeps everything of the scale (training, the 11 evaluations and traces, the four
 * routing analyses), a suite table and a report over them; `slice` only the training and the
 * evaluation and trace of its first checkpoint (the Slurm test: every stage is a batch job there).
 * The worker is built for the CPU and the evaluations and traces run on it: the GPUs a Megatron
 * training is handed (local `--gpus`, Slurm's placeholder gres) exist only for the doubles.
 */
import suite from "../../../../pipelines/scaling-suite.ts"
import * as Pipeline from "../../../../src/Pipeline.ts"
import { node, ref } from "../../../../src/Stage.ts"
import { reportNode } from "../../../../stages/analysis/report.ts"
import { suiteTable } from "../../../../stages/suiteTable.ts"
import { upstreamClosure } from "../../../support/closure.ts"

export const SCALE = "flame-moe-38m-tiny"

export default Pipeline.define({
  name: "suite-megatron",
  description: `scaling-suite --preset tiny for ${SCALE} only, for training it with the Megatron backend`,
  presets: {
    tiny: `everything of ${SCALE} in the tiny suite, a suite table and a report`,
    slice: `${SCALE}'s training and the evaluation and trace of its first checkpoint`
  },
  defaultPreset: "tiny",
  build: (ctx) => {
    const all = suite.build({ ...ctx, preset: "tiny", executor: { ...ctx.executor, gpus: 0 } }).map((n) =>
      n.id.startsWith(`eval/${SCALE}/`) || n.id.startsWith(`trace/${SCALE}/`)
        ? { ...n, params: { ...n.params, backend: "cpu" } }
        : n
    )
    const evals = all.filter((n) => n.id.startsWith(`eval/${SCALE}/`)).map((n) => Number(n.id.split("/").pop()))
    if (ctx.preset === "slice") {
      return upstreamClosure(all, [`eval/${SCALE}/${evals[0]}`, `trace/${SCALE}/${evals[0]}`])
    }
    const own = all.filter((n) => n.id.endsWith(`/${SCALE}`) || n.id.includes(`/${SCALE}/`)).map((n) => n.id)
    const kept = [
      ...upstreamClosure(all, own),
      node(suiteTable, {
        id: "suite/table",
        params: { scales: [SCALE] },
        inputs: { [SCALE]: ref(`eval/${SCALE}/${Math.max(...evals)}`, "eval.json") }
      })
    ]
    return [
      ...kept,
      reportNode({
        id: "suite/report",
        title: "suite-megatron",
        pipeline: "suite-megatron",
        preset: "tiny",
        nodes: kept
      })
    ]
  }
})
