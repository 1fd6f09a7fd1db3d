/**
 * The toy pipeline as its code might change between a run and the audit of it: `generate` draws
 * FLAME_TOY_COUNT numbers where that is set (the code then), the toy's own count otherwise (the code
 * now, on the compute nodes too).
 */
import toy from "../../../../pipelines/toy.ts"
import * as Pipeline from "../../../../src/Pipeline.ts"

export default Pipeline.define({
  ...toy,
  name: "toy-drift",
  description: "the toy pipeline, with generate's count from FLAME_TOY_COUNT when set",
  build: (ctx) => {
    const count = process.env.FLAME_TOY_COUNT
    return toy.build(ctx).map((node) =>
      node.id === "generate" && count !== undefined
        ? { ...node, params: { ...node.params, count: Number(count) } }
        : node
    )
  }
})
