/**
 * A slice of `scaling-suite --preset tiny` for the Slurm tests: the smallest scale's training and the
 * evaluation and trace of its first checkpoint, with everything they depend on (kernel build,
 * tokenization of every shard, eval requests), as the suite builds them.
 */
import suite from "../../../../pipelines/scaling-suite.ts"
import * as Pipeline from "../../../../src/Pipeline.ts"
import type { StageNode } from "../../../../src/Stage.ts"

const SCALE = "flame-moe-38m-tiny"

/** The nodes the targets need, in the suite's order. */
const closure = (nodes: ReadonlyArray<StageNode>, keep: (id: string) => boolean): ReadonlyArray<StageNode> => {
  const byId = new Map(nodes.map((n) => [n.id, n]))
  const needed = new Set<string>()
  const visit = (id: string) => {
    if (needed.has(id)) return
    needed.add(id)
    for (const input of Object.values(byId.get(id)!.inputs)) visit(input.stage)
  }
  nodes.filter((n) => keep(n.id)).forEach((n) => visit(n.id))
  return nodes.filter((n) => needed.has(n.id))
}

export default Pipeline.define({
  name: "suite-slice",
  description: `scaling-suite --preset tiny, cut down to ${SCALE}'s training and its first checkpoint's eval and trace`,
  presets: { tiny: suite.presets.tiny! },
  defaultPreset: "tiny",
  build: (ctx) => {
    const nodes = suite.build(ctx)
    const first = nodes.find((n) => n.id.startsWith(`eval/${SCALE}/`))!.id.split("/").pop()
    return closure(nodes, (id) => id === `eval/${SCALE}/${first}` || id === `trace/${SCALE}/${first}`)
  }
})
