/**
 * A slice of `scaling-suite --preset tiny` for the Slurm tests: the smallest scale's training and the
 * evaluation and trace of its first checkpoint, with everything they depend on (kernel build,
 * tokenization of every shard, eval requests), as the suite builds them.
 */
import suite from "../../../../pipelines/scaling-suite.ts"
import * as Pipeline from "../../../../src/Pipeline.ts"
import { upstreamClosure } from "../../../support/closure.ts"

const SCALE = "flame-moe-38m-tiny"

export default Pipeline.define({
  name: "suite-slice",
  description: `scaling-suite --preset tiny, cut down to ${SCALE}'s training and its first checkpoint's eval and trace`,
  presets: { tiny: suite.presets.tiny! },
  defaultPreset: "tiny",
  build: (ctx) => {
    const nodes = suite.build(ctx)
    const first = nodes.find((n) => n.id.startsWith(`eval/${SCALE}/`))!.id.split("/").pop()
    return upstreamClosure(nodes, [`eval/${SCALE}/${first}`, `trace/${SCALE}/${first}`])
  }
})
