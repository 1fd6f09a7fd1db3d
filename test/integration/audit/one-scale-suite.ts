/**
 * The tiny scaling suite cut down to its smallest scale: the same stages, params and fingerprints as
 * `scaling-suite --preset tiny` for everything flame-moe-38m-tiny needs (sources, compile-kernels,
 * tokenization, training, its 11 evaluations and traces), plus a suite table over that one scale.
 * Runs in about a minute on 2 cores, so the audit and gc tests can afford a workspace of their own.
 * `--config kernels=DIR` takes the worker's sources from DIR/src and DIR/Makefile instead of kernels/
 * (the store hard-links sources, so a test works on a copy nobody edits meanwhile).
 */
import * as path from "node:path"
import suite from "../../../pipelines/scaling-suite.ts"
import * as Pipeline from "../../../src/Pipeline.ts"
import { node, ref } from "../../../src/Stage.ts"
import { suiteTable } from "../../../stages/suiteTable.ts"
import { upstreamClosure } from "../../support/closure.ts"

export const SCALE = "flame-moe-38m-tiny"

export default Pipeline.define({
  name: "scaling-suite-38m",
  description: "the tiny scaling suite for flame-moe-38m-tiny only",
  presets: { tiny: "as scaling-suite's tiny preset" },
  defaultPreset: "tiny",
  build: (ctx) => {
    const kernels = ctx.config.kernels
    const all = suite.build({ ...ctx, preset: "tiny" }).map((n) =>
      kernels === undefined || !n.id.startsWith("source/kernels/")
        ? n
        : { ...n, params: { ...n.params, path: path.join(kernels, n.id.slice("source/kernels/".length)) } }
    )
    const own = all.filter((n) => n.id.endsWith(`/${SCALE}`) || n.id.includes(`/${SCALE}/`)).map((n) => n.id)
    const kept = upstreamClosure(all, own)
    const evals = kept.filter((n) => n.id.startsWith(`eval/${SCALE}/`)).map((n) => Number(n.id.split("/").pop()))
    const last = Math.max(...evals)
    return [
      ...kept,
      node(suiteTable, {
        id: "suite/table",
        params: { scales: [SCALE] },
        inputs: { [SCALE]: ref(`eval/${SCALE}/${last}`, "eval.json") }
      })
    ]
  }
})
