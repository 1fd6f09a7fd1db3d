/**
 * import/<scale>/<step>: one Megatron-LM checkpoint (torch_dist or legacy; a released FLAME-MoE model
 * or one the Megatron backend trained) turned into the worker's checkpoint, so eval and trace read
 * it unchanged. The model comes from the checkpoint's stored args; a stage that declares a model
 * refuses a checkpoint of another shape. See src/megatron/import/ and docs/megatron-checkpoints.md.
 */
import { Effect, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { StageFailed, type WorkerFailed } from "../src/domain/Errors.ts"
import type { ImportResult } from "../src/megatron/import/importCheckpoint.ts"
import { openImport } from "../src/megatron/import/importCheckpoint.ts"
import type { StageContext } from "../src/Stage.ts"
import { define } from "../src/Stage.ts"
import { runWorker } from "../src/worker/runWorker.ts"
import { ModelParams, workerBinary, writeWorkerConfig } from "./flame/model.ts"

/**
 * Imports the Megatron checkpoint `dir` into `out` as a worker checkpoint, for a stage that has the
 * worker among its inputs (it computes the model fingerprint). `expected`: the model it must hold.
 */
export const importForWorker = (
  ctx: StageContext<unknown>,
  dir: string,
  out: string,
  expected: ModelParams | undefined
): Effect.Effect<ImportResult, StageFailed | WorkerFailed> =>
  Effect.gen(function*() {
    const failure = (e: unknown) =>
      new StageFailed({ stage: ctx.stageId, reason: e instanceof Error ? e.message : String(e) })
    const source = path.resolve(dir)
    // The checkpoint is opened once: its model first (the worker computes its fingerprint), then converted.
    const result = yield* Effect.acquireUseRelease(
      Effect.tryPromise({ try: () => openImport(source), catch: failure }),
      (pending) =>
        Effect.gen(function*() {
          const config = yield* writeWorkerConfig(ctx, "imported-model.json", { model: pending.model })
          const { modelFingerprint } = (yield* runWorker(ctx, {
            file: workerBinary(ctx),
            args: ["params", "--config", config]
          })) as { modelFingerprint: string }
          return yield* Effect.tryPromise({
            try: () => pending.convert({ outputDir: out, fingerprint: modelFingerprint, expected }),
            catch: failure
          })
        }),
      (pending) => Effect.sync(() => pending.close())
    )
    yield* ctx.log(
      `imported ${result.format} checkpoint ${source} at iteration ${result.iteration}: ${result.tensors} tensors, ` +
        `${result.parameters} parameters, ${result.skippedEntries} non-weight entries skipped`
    )
    return result
  })

/** Whether a checkpoint directory is the worker's own (else it is read as a Megatron checkpoint). */
export const isWorkerCheckpoint = (dir: string): boolean => fs.existsSync(path.join(dir, "state.json"))

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
    /** The model the checkpoint holds, as the worker takes it. */
    model: ModelParams
  }),
  resources: () => ({ cpus: 1, memoryMb: 4096 }),
  reproducibility: { _tag: "bitwise" },
  run: (ctx) =>
    Effect.gen(function*() {
      const result = yield* importForWorker(ctx, ctx.inputs.megatron!, ctx.output("checkpoint"), ctx.params.model)
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

/**
 * The `checkpoint` input of an eval or trace stage as the worker reads it: a worker checkpoint as it
 * is; a Megatron-LM checkpoint (what `train` with `backend: megatron` writes) imported into the
 * stage's work directory first, then removed once `use` is done with it (it can be as large as the
 * model in float32, and the original stays the recorded artifact).
 */
export const withWorkerCheckpoint = <A, E>(
  ctx: StageContext<{ readonly model: ModelParams }>,
  use: (checkpoint: string) => Effect.Effect<A, E>
): Effect.Effect<A, E | StageFailed | WorkerFailed> => {
  const dir = ctx.inputs.checkpoint!
  if (isWorkerCheckpoint(dir)) return use(dir)
  const out = path.join(ctx.workDir, "imported-checkpoint")
  return Effect.acquireUseRelease(
    importForWorker(ctx, dir, out, ctx.params.model),
    () => use(out),
    () => Effect.sync(() => fs.rmSync(out, { recursive: true, force: true }))
  )
}
