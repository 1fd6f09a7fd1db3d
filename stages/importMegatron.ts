/**
 * import/<scale>/<step>: one Megatron-LM checkpoint (torch_dist or legacy; a released FLAME-MoE model
 * or one the Megatron backend trained) turned into the worker's checkpoint, so eval and trace read
 * it unchanged. The model comes from the checkpoint's stored args; a stage that declares a model
 * refuses a checkpoint of another shape. See src/megatron/import/ and docs/megatron-checkpoints.md.
 */
import { Effect, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { StageFailed } from "../src/domain/Errors.ts"
import { importMegatronCheckpoint, readCheckpointModel } from "../src/megatron/import/importCheckpoint.ts"
import { define } from "../src/Stage.ts"
import { runWorker } from "../src/worker/runWorker.ts"
import { ModelParams, workerBinary, writeWorkerConfig } from "./flame/model.ts"

const ImportedModelSchema = Schema.Struct({
  vocabSize: Schema.Number,
  hiddenSize: Schema.Number,
  numLayers: Schema.Number,
  numAttentionHeads: Schema.Number,
  ffnHiddenSize: Schema.Number,
  moeFfnHiddenSize: Schema.Number,
  numExperts: Schema.Number,
  topK: Schema.Number,
  sharedExpertSize: Schema.Number,
  moeLayers: Schema.String,
  seqLength: Schema.Number,
  ropeBase: Schema.Number,
  normEps: Schema.Number,
  initStd: Schema.Number,
  auxLossCoeff: Schema.Number,
  zLossCoeff: Schema.Number
})

export const importMegatron = define({
  kind: "import/megatron",
  version: "1",
  params: Schema.Struct({
    scale: Schema.String,
    step: Schema.Int,
    /** The model the checkpoint must hold; unset: whatever its args say. */
    model: Schema.optional(ModelParams)
  }),
  outputs: () => ({ checkpoint: "dir" }),
  result: Schema.Struct({
    format: Schema.Literal("torch_dist", "legacy"),
    iteration: Schema.Number,
    tensors: Schema.Number,
    parameters: Schema.Number,
    bytesWritten: Schema.Number,
    model: ImportedModelSchema
  }),
  resources: () => ({ cpus: 1, memoryMb: 4096 }),
  reproducibility: { _tag: "bitwise" },
  run: (ctx) =>
    Effect.gen(function*() {
      const fail = (reason: string) => new StageFailed({ stage: ctx.stageId, reason })
      const out = ctx.output("checkpoint")
      const dir = path.resolve(ctx.inputs.megatron!)
      const failure = (e: unknown) => fail(e instanceof Error ? e.message : String(e))
      const model = yield* Effect.tryPromise({ try: () => readCheckpointModel(dir), catch: failure })
      // The model fingerprint is the worker's (a sha256 of its canonical model section): asked of it.
      const config = yield* writeWorkerConfig(ctx, "model.json", { model })
      const { modelFingerprint } = (yield* runWorker(ctx, {
        file: workerBinary(ctx),
        args: ["params", "--config", config]
      })) as { modelFingerprint: string }
      const result = yield* Effect.tryPromise({
        try: () =>
          importMegatronCheckpoint(dir, {
            outputDir: out,
            fingerprint: modelFingerprint,
            expected: ctx.params.model
          }),
        catch: failure
      })
      yield* ctx.log(
        `imported ${result.format} checkpoint at iteration ${result.iteration}: ${result.tensors} tensors, ` +
          `${result.parameters} parameters, ${result.skippedEntries} non-weight entries skipped`
      )
      if (!fs.existsSync(path.join(out, "state.json"))) return yield* fail("the import wrote no state.json")
      return {
        format: result.format,
        iteration: result.iteration,
        tensors: result.tensors,
        parameters: result.parameters,
        bytesWritten: result.bytesWritten,
        model: result.model
      }
    })
})
