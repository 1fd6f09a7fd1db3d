/**
 * The scaling-suite's presets as resolved graphs: `full` refuses to start without its data and GPUs
 * and says what to set; given them, it places the published configuration; `tiny` keeps the graph.
 */
import { Effect, Either } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import suite from "../../../pipelines/scaling-suite.ts"
import type { ResolvedPipeline } from "../../../src/Pipeline.ts"
import { resolve } from "../../../src/Pipeline.ts"
import { fromRoot } from "../../../src/ProjectRoot.ts"

const resolveSuite = (preset: string, config: Record<string, string>, gpus: number) =>
  Effect.runSync(Effect.either(resolve(suite, { preset, config, executor: { gpus } })))

const fullConfig = () => {
  const corpus = fs.mkdtempSync(path.join(os.tmpdir(), "fp-dclm-"))
  for (const name of ["shard_00000000_processed.jsonl.zstd", "shard_00000001_processed.jsonl.zstd", "notes.txt"]) {
    fs.writeFileSync(path.join(corpus, name), "")
  }
  return { corpus, tokenizer: fromRoot("fixtures", "tokenizer", "tokenizer.json"), tasks: fromRoot("fixtures", "eval") }
}

const ids = (p: ResolvedPipeline) => p.stages.map((s) => s.id)

describe("scaling-suite presets", () => {
  it("full: stops before anything runs, naming every missing setting", () => {
    const result = resolveSuite("full", {}, 0)
    expect(Either.isLeft(result)).toBe(true)
    const message = Either.isLeft(result) ? result.left.message : ""
    expect(message).toContain("--config corpus=")
    expect(message).toContain("--config tokenizer=")
    expect(message).toContain("--config tasks=")
    expect(message).toContain("GPUs")
    expect(message).toContain("--preset tiny")

    const partly = resolveSuite("full", { ...fullConfig(), corpus: "/nonexistent/dclm" }, 8)
    expect(Either.isLeft(partly) ? partly.left.message : "").toContain("/nonexistent/dclm does not exist")
  })

  it("full: the published hyper-parameters, 11 evaluated checkpoints per scale (the final one too), one tokenize stage per shard", () => {
    const result = resolveSuite("full", fullConfig(), 8)
    if (Either.isLeft(result)) throw result.left
    const pipeline = result.right
    const train = ids(pipeline).filter((id) => id.startsWith("train/"))
    expect(train).toHaveLength(7)
    expect(ids(pipeline).filter((id) => id.startsWith("tokenize/"))).toEqual([
      "tokenize/shard_00000000_processed",
      "tokenize/shard_00000001_processed"
    ])
    // FLAME-MoE's data: each shard its own dataset in the blend, in the order of its --data-path list.
    const blend = {
      blend0: { stage: "tokenize/shard_00000000_processed", output: "dataset" },
      blend1: { stage: "tokenize/shard_00000001_processed", output: "dataset" }
    }
    expect(pipeline.byId.get("train/flame-moe-1.7b")!.inputs).toMatchObject(blend)
    expect(pipeline.byId.get("eval/flame-moe-1.7b/11000")!.inputs).toMatchObject(blend)
    // Held-out samples as FLAME-MoE's runs built them: validation at its training run's sizes
    // ((11029 // 1100 + 1) x 100 x 1024), traces on its capture run's test split (25 x 1024).
    expect(pipeline.byId.get("eval/flame-moe-1.7b/11000")!.encodedParams.data).toEqual({
      split: "90,5,5",
      seed: 1234,
      splitSamples: { train: 11029 * 1024, valid: 11 * 100 * 1024, test: 100 * 1024 }
    })
    expect(pipeline.byId.get("trace/flame-moe-1.7b/11000")!.encodedParams.data).toEqual({
      split: "95,0,5",
      seed: 1234,
      splitSamples: { train: 11029 * 1024, valid: 0, test: 25 * 1024 }
    })
    const merged = resolveSuite("full", { ...fullConfig(), data: "merged" }, 8)
    if (Either.isLeft(merged)) throw merged.left
    expect(ids(merged.right)).toContain("tokenize/merge")
    expect(merged.right.byId.get("eval/flame-moe-1.7b/11000")!.inputs.dataset).toEqual({
      stage: "tokenize/merge",
      output: "dataset"
    })
    const bad = resolveSuite("full", { ...fullConfig(), data: "zip" }, 8)
    expect(Either.isLeft(bad) ? bad.left.message : "").toContain("--config data=zip: expected blend")
    const big = pipeline.byId.get("train/flame-moe-1.7b")!.encodedParams as Record<string, unknown>
    expect(big).toMatchObject({
      globalBatchSize: 1024,
      microBatchSize: 4,
      trainIters: 11029,
      saveInterval: 1100,
      lr: 3e-4,
      minLr: 3e-5,
      backend: "cuda"
    })
    expect(big.model).toMatchObject({
      hiddenSize: 2048,
      numLayers: 18,
      numExperts: 64,
      topK: 6,
      moeFfnHiddenSize: 1408,
      sharedExpertSize: 2816,
      seqLength: 2048,
      vocabSize: 50304
    })
    for (const id of train) {
      const scale = id.slice("train/".length)
      expect(ids(pipeline).filter((s) => s.startsWith(`eval/${scale}/`)), scale).toHaveLength(11)
      expect(ids(pipeline).filter((s) => s.startsWith(`trace/${scale}/`)), scale).toHaveLength(11)
    }
    expect(ids(pipeline)).toContain("eval/flame-moe-1.7b/11000")
    // Megatron's extra final save (11029 = 10 x 1100 + 29) is evaluated, the table's row and the
    // saturation reference, as in FLAME-MoE's README (ITER=11029) and its saturation plots.
    expect(ids(pipeline)).toContain("eval/flame-moe-1.7b/11029")
    expect(pipeline.byId.get("suite/table")!.inputs["flame-moe-1.7b"]).toEqual({
      stage: "eval/flame-moe-1.7b/11029",
      output: "eval.json"
    })
    const steps = (pipeline.byId.get("analysis/flame-moe-1.7b/saturation")!.encodedParams as { steps: Array<number> })
      .steps
    expect(steps[steps.length - 1]).toBe(11029)
    // With GPUs the worker is built with its CUDA backend, and that binary is what GPU stages run.
    const kernels = pipeline.byId.get("compile-kernels")!
    expect(kernels.encodedParams.cuda).toBe(true)
    expect(Object.keys(kernels.outputs).sort()).toEqual(["flame-worker", "flame-worker-cuda"])
    expect(pipeline.byId.get("train/flame-moe-1.7b")!.inputs.worker).toEqual({
      stage: "compile-kernels",
      output: "flame-worker-cuda"
    })
  })

  it("tiny: the same seven-scale graph on the CPU backend", () => {
    const tiny = resolveSuite("tiny", {}, 0)
    if (Either.isLeft(tiny)) throw tiny.left
    const shape = (p: ResolvedPipeline) =>
      ids(p).filter((id) => /^(train|eval|trace)\//.test(id)).map((id) => id.split("/")[0]).sort()
    const full = resolveSuite("full", fullConfig(), 8)
    if (Either.isLeft(full)) throw full.left
    expect(shape(tiny.right)).toEqual(shape(full.right))
    const train = tiny.right.byId.get("train/flame-moe-38m-tiny")!.encodedParams as Record<string, unknown>
    expect(train.backend).toBe("cpu")
    expect(Object.keys(tiny.right.byId.get("compile-kernels")!.outputs)).toEqual(["flame-worker"])
    expect(train.model).toMatchObject({ numExperts: 64, topK: 6 })
  })
})
