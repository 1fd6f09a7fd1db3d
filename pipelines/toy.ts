/**
 * A small pipeline exercising the engine: fan-out, a child worker, and a stage whose param can
 * change without changing its output (for early cutoff).
 *
 *   generate -> filter -> square/0..2 -> sum (child worker) -> report
 *                    \___________________________________________/
 */
import * as Pipeline from "../src/Pipeline.ts"
import { node, ref } from "../src/Stage.ts"
import { filter, generate, report, square, sum } from "../stages/toy/index.ts"

const SHARDS = 3

export default Pipeline.define({
  name: "toy",
  description: "a few numbers, squared in shards and summed by a child worker",
  presets: { default: "100 numbers", big: "10,000 numbers" },
  defaultPreset: "default",
  build: ({ preset }) => [
    node(generate, { id: "generate", params: { count: preset === "big" ? 10_000 : 100, seed: 7 } }),
    node(filter, { id: "filter", params: { threshold: 10 }, inputs: { numbers: ref("generate", "numbers.json") } }),
    ...Array.from({ length: SHARDS }, (_, shard) =>
      node(square, {
        id: `square/${shard}`,
        params: { shard, shards: SHARDS },
        inputs: { numbers: ref("filter", "kept.json") }
      })),
    node(sum, {
      id: "sum",
      inputs: Object.fromEntries(
        Array.from({ length: SHARDS }, (_, shard) => [`shard${shard}`, ref(`square/${shard}`, "squares.json")])
      )
    }),
    node(report, {
      id: "report",
      inputs: { total: ref("sum", "total.json"), kept: ref("filter", "kept.json") }
    })
  ]
})
