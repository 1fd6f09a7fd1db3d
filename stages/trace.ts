/**
 * trace/<scale>/<step>: router traces of one checkpoint on a fixed set of held-out test-split
 * samples — the same samples for every checkpoint, so routing can be compared across training.
 * The binary layout is documented in kernels/README.md.
 */
import { Effect, Schema } from "effect"
import { megatronLayerNumber } from "../src/analysis/layerNumber.ts"
import { define } from "../src/Stage.ts"
import { runWorker } from "../src/worker/runWorker.ts"
import {
  settleWorkerStage,
  workerBinary,
  workerDataConfig,
  workerStageFields,
  workerStageResources,
  writeWorkerConfig
} from "./flame/model.ts"
import { withWorkerCheckpoint } from "./importMegatron.ts"

export const trace = define({
  kind: "trace",
  version: "2",
  params: Schema.Struct({
    scale: Schema.String,
    step: Schema.Int,
    numSamples: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 16 }),
    ...workerStageFields
  }),
  settle: settleWorkerStage,
  outputs: () => ({ "trace.bin": "file" }),
  result: Schema.Struct({
    samples: Schema.Number,
    tokens: Schema.Number,
    /** The MoE layers traced, by Megatron's 1-based layer number (trace.bin stores 0-based indices). */
    layers: Schema.Array(Schema.Number),
    topK: Schema.Number,
    numExperts: Schema.Number
  }),
  resources: workerStageResources,
  // CPU: byte-identical traces. GPU: near-tied router scores may pick other experts in bf16, so only the
  // traced samples and tokens must match exactly; the routing analyses downstream compare the rest.
  reproducibility: (p) =>
    p.backend === "cpu" ? { _tag: "bitwise" } : { _tag: "tolerance", metrics: { samples: 0, tokens: 0 } },
  run: (ctx) =>
    Effect.gen(function*() {
      const p = ctx.params
      const config = yield* writeWorkerConfig(ctx, "trace.json", {
        model: p.model,
        data: yield* workerDataConfig(ctx, p.data),
        trace: { numSamples: p.numSamples, split: "test", output: ctx.output("trace.bin") },
        runtime: { threads: ctx.cpus, outputDir: ctx.workDir, backend: p.backend }
      })
      const result = (yield* withWorkerCheckpoint(ctx, (checkpoint) =>
        runWorker(ctx, {
          file: workerBinary(ctx),
          args: ["trace", "--config", config, "--checkpoint", checkpoint]
        }))) as {
          samples: number
          tokens: number
          layers: ReadonlyArray<number>
          topK: number
          numExperts: number
        }
      // The result is decoded against the stage's result schema by the engine.
      return { ...result, layers: result.layers.map(megatronLayerNumber) }
    })
})
