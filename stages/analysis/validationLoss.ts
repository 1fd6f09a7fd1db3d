/**
 * ablation/val-loss/<point>: the validation loss of one ablation run's final checkpoint, with what the
 * scaling-law fit needs beside it: N = active parameters (counted by the worker for this model) and
 * D = tokens trained (the checkpoint's consumed samples x sequence length), so C = 6 N D.
 */
import { Effect, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { StageFailed } from "../../src/domain/Errors.ts"
import { ValidationPoint } from "../../src/scaling/schema.ts"
import { define } from "../../src/Stage.ts"
import { runWorker } from "../../src/worker/runWorker.ts"
import {
  settleWorkerStage,
  workerBinary,
  workerDataConfig,
  workerStageFields,
  workerStageResources,
  writeWorkerConfig
} from "../flame/model.ts"

export const validationLoss = define({
  kind: "ablation/validation-loss",
  version: "1",
  params: Schema.Struct({
    point: Schema.String,
    /** The budget this run belongs to in the ablation grid (6 N D of the published run). */
    flopsBudget: Schema.Number.pipe(Schema.positive()),
    /** The published shape this run stands for (hidden size x layers), for grouping in the fit and the report. */
    shape: Schema.String,
    valSamples: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 1024 }),
    ...workerStageFields
  }),
  settle: settleWorkerStage,
  outputs: () => ({ "val.json": "file" }),
  result: ValidationPoint,
  resources: workerStageResources,
  // As for eval: the CPU worker is deterministic; a bf16 GPU loss within 0.01 nats.
  reproducibility: (p) => p.backend === "cpu" ? { _tag: "bitwise" } : { _tag: "tolerance", metrics: { loss: 0.01 } },
  run: (ctx) =>
    Effect.gen(function*() {
      const p = ctx.params
      const checkpoint = ctx.inputs.checkpoint!
      const state = yield* Effect.try({
        try: () =>
          JSON.parse(fs.readFileSync(path.join(checkpoint, "state.json"), "utf8")) as {
            iteration: number
            consumedSamples: number
          },
        catch: (e) =>
          new StageFailed({ stage: ctx.stageId, reason: `cannot read ${checkpoint}/state.json: ${String(e)}` })
      })
      const config = yield* writeWorkerConfig(ctx, "eval.config.json", {
        model: p.model,
        data: yield* workerDataConfig(ctx, p.data),
        eval: { valSamples: p.valSamples, split: "valid" },
        runtime: { threads: ctx.cpus, outputDir: ctx.workDir, backend: p.backend }
      })
      const evaluated = (yield* runWorker(ctx, {
        file: workerBinary(ctx),
        args: ["eval", "--config", config, "--checkpoint", checkpoint]
      })) as { loss?: number; perplexity?: number; samples?: number }
      const counted = (yield* runWorker(ctx, { file: workerBinary(ctx), args: ["params", "--config", config] })) as {
        activeParams?: number
        totalParams?: number
      }
      if (evaluated.loss === undefined || counted.activeParams === undefined || counted.totalParams === undefined) {
        return yield* new StageFailed({ stage: ctx.stageId, reason: "the worker reported no loss or parameter count" })
      }
      const tokens = state.consumedSamples * p.model.seqLength
      const point: typeof ValidationPoint.Type = {
        point: p.point,
        shape: p.shape,
        flopsBudget: p.flopsBudget,
        iteration: state.iteration,
        activeParams: counted.activeParams,
        totalParams: counted.totalParams,
        tokens,
        flops: 6 * counted.activeParams * tokens,
        loss: evaluated.loss,
        perplexity: evaluated.perplexity ?? Math.exp(evaluated.loss),
        samples: evaluated.samples ?? p.valSamples
      }
      yield* ctx.metric("validation_loss", state.iteration, point.loss)
      fs.writeFileSync(ctx.output("val.json"), JSON.stringify(point, null, 2) + "\n")
      return point
    })
})
