/**
 * What the FLAME-MoE stages share: the model shape as typed params, the worker's config file, and
 * how stages find the worker binary and the dataset among their inputs.
 */
import { Effect, Either, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { StageFailed } from "../../src/domain/Errors.ts"
import { architecture } from "../../src/flame/architecture.ts"
import { parseMoeLayerFreq } from "../../src/flame/moeLayerFreq.ts"
import type { TinyScale } from "../../src/flame/schema.ts"
import type { ExecutorInfo, StageContext } from "../../src/Stage.ts"
import { datasetPrefix } from "../tokenize.ts"

const PositiveInt = Schema.Int.pipe(Schema.positive())
const PositiveNumber = Schema.Finite.pipe(Schema.positive())
const NonNegativeNumber = Schema.Finite.pipe(Schema.nonNegative())

/** The worker stores expert ids in a byte (its trace format), so it takes at most this many experts. */
const MAX_EXPERTS = 256

/**
 * What the worker would refuse about a model (kernels/src/config.cpp), found when the pipeline is
 * resolved: each issue names the key it is about.
 */
const modelIssues = (m: {
  readonly hiddenSize: number
  readonly numLayers: number
  readonly numAttentionHeads: number
  readonly numExperts: number
  readonly topK: number
  readonly moeLayers: string
}): Array<Schema.FilterIssue> => {
  const issues: Array<Schema.FilterIssue> = []
  if (m.topK > m.numExperts) {
    issues.push({ path: ["topK"], message: `${m.topK} exceeds the ${m.numExperts} experts` })
  }
  if (m.numExperts > MAX_EXPERTS) {
    issues.push({ path: ["numExperts"], message: `${m.numExperts} experts; the worker takes at most ${MAX_EXPERTS}` })
  }
  if (m.hiddenSize % m.numAttentionHeads !== 0) {
    issues.push({
      path: ["hiddenSize"],
      message: `${m.hiddenSize} is not divisible by the ${m.numAttentionHeads} attention heads`
    })
  } else if ((m.hiddenSize / m.numAttentionHeads) % 2 !== 0) {
    issues.push({
      path: ["hiddenSize"],
      message: `the head dimension ${m.hiddenSize}/${m.numAttentionHeads} = ${
        m.hiddenSize / m.numAttentionHeads
      } must be even (RoPE rotates pairs)`
    })
  }
  // The worker reads the list form only ("[0]*1+[1]*8"); Megatron's integer form needs it spelled out.
  const pattern = /^\s*\d+\s*$/.test(m.moeLayers)
    ? Either.left({
      message: `"${m.moeLayers.trim()}": write the pattern as a list, e.g. "[0]*1+[1]*${m.numLayers - 1}"`
    })
    : parseMoeLayerFreq(m.moeLayers, m.numLayers)
  if (Either.isLeft(pattern)) issues.push({ path: ["moeLayers"], message: pattern.left.message })
  return issues
}

/** The model as the worker's config.model takes it; defaults are FLAME-MoE's constants. */
export const ModelParams = Schema.Struct({
  vocabSize: PositiveInt,
  hiddenSize: PositiveInt,
  numLayers: PositiveInt,
  numAttentionHeads: Schema.optionalWith(PositiveInt, { default: () => 16 }),
  ffnHiddenSize: PositiveInt,
  moeFfnHiddenSize: PositiveInt,
  numExperts: Schema.optionalWith(PositiveInt, { default: () => 64 }),
  topK: Schema.optionalWith(PositiveInt, { default: () => 6 }),
  /** Width of the shared expert; FLAME-MoE: 2 x moeFfnHiddenSize. */
  sharedExpertSize: Schema.Int.pipe(Schema.nonNegative()),
  /** Megatron's --moe-layer-freq pattern, e.g. "[0]*1+[1]*8": one entry per layer. */
  moeLayers: Schema.String,
  seqLength: PositiveInt,
  ropeBase: Schema.optionalWith(PositiveNumber, { default: () => 10000 }),
  normEps: Schema.optionalWith(PositiveNumber, { default: () => 1e-6 }),
  initStd: Schema.optionalWith(PositiveNumber, { default: () => 0.02 }),
  auxLossCoeff: Schema.optionalWith(NonNegativeNumber, { default: () => 0.01 }),
  zLossCoeff: Schema.optionalWith(NonNegativeNumber, { default: () => 0.001 })
}).pipe(Schema.filter(modelIssues))
export type ModelParams = typeof ModelParams.Type

/** What sets one FLAME-MoE model apart from another; the rest of ModelParams is the architecture's constants. */
export type ModelShape = Omit<ModelParams, "ropeBase" | "normEps" | "initStd" | "auxLossCoeff" | "zLossCoeff">

/** A FLAME-MoE model of the given shape: RoPE base, norm epsilon, init std and router loss coefficients as published. */
export const flameModel = (shape: ModelShape): ModelParams => ({
  ...shape,
  ropeBase: architecture.ropeBase,
  normEps: architecture.normEpsilon,
  initStd: architecture.initMethodStd,
  auxLossCoeff: architecture.auxLossCoeff,
  zLossCoeff: architecture.zLossCoeff
})

export const Backend = Schema.Literal("auto", "cpu", "cuda")
export type Backend = typeof Backend.Type

/** `auto` becomes a concrete backend before fingerprinting: cuda when the executor has GPUs. */
export const settleBackend = (backend: Backend, executor: ExecutorInfo): Backend =>
  backend === "auto" ? (executor.gpus > 0 ? "cuda" : "cpu") : backend

const NonNegativeInt = Schema.Int.pipe(Schema.nonNegative())

/** Megatron's train_valid_test_num_samples: the size of each split, which decides its sample order. */
export const SplitSamples = Schema.Struct({ train: NonNegativeInt, valid: NonNegativeInt, test: NonNegativeInt })
export type SplitSamples = typeof SplitSamples.Type

/** Megatron's --split as the worker takes it: three non-negative weights, not all zero ("90,5,5"). */
export const SplitWeights = Schema.String.pipe(
  Schema.filter((split) => {
    const parts = split.split(",")
    const weights = parts.map((p) => (/^\s*(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/.test(p) ? Number(p) : Number.NaN))
    return (parts.length === 3 && weights.every(Number.isFinite) && weights.some((w) => w > 0)) ||
      `expected three non-negative numbers like "90,5,5", got ${JSON.stringify(split)}`
  })
)

export const DataParams = Schema.Struct({
  split: Schema.optionalWith(SplitWeights, { default: () => "90,5,5" }),
  /** numpy's RandomState takes seeds in [0, 2^32). */
  seed: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, 2 ** 32 - 1)), { default: () => 1234 }),
  /** Unset: each split is as large as the stage reads (the worker's default). */
  splitSamples: Schema.optional(SplitSamples)
})
export type DataParams = typeof DataParams.Type

/**
 * The params every stage that runs a model through the worker shares (eval, trace, validation
 * loss): the model's shape, the dataset split it was trained on, the backend and CPU threads.
 */
export const workerStageFields = {
  model: ModelParams,
  data: Schema.optionalWith(DataParams, { default: () => ({ split: "90,5,5", seed: 1234 }) }),
  backend: Schema.optionalWith(Backend, { default: () => "auto" as const }),
  threads: Schema.optionalWith(PositiveInt, { default: () => 1 })
}

/** `settle` of such a stage: the backend made concrete for the executor. */
export const settleWorkerStage = <P extends { readonly backend: Backend }>(p: P, executor: ExecutorInfo): P => ({
  ...p,
  backend: settleBackend(p.backend, executor)
})

/** `resources` of such a stage: its threads, and one GPU on the CUDA backend. */
export const workerStageResources = (p: { readonly threads: number; readonly backend: Backend }) => ({
  cpus: p.threads,
  gpus: p.backend === "cuda" ? 1 : 0
})

/** The model of a tiny scale (src/flame/tinyPreset.ts): the published structure, shrunk. */
export const tinyModel = (t: TinyScale): ModelParams =>
  flameModel({
    vocabSize: t.paddedVocabSize,
    hiddenSize: t.hiddenSize,
    numLayers: t.numLayers,
    numAttentionHeads: t.numAttentionHeads,
    ffnHiddenSize: t.ffnHiddenSize,
    moeFfnHiddenSize: t.moeFfnHiddenSize,
    numExperts: t.numExperts,
    topK: t.routerTopK,
    sharedExpertSize: t.sharedExpertWidthFactor * t.moeFfnHiddenSize,
    moeLayers: t.moeLayerFreq,
    seqLength: t.seqLength
  })

/** Writes the worker's config next to the stage's outputs (it is part of what the stage leaves behind). */
export const writeWorkerConfig = (ctx: StageContext<unknown>, name: string, config: unknown) =>
  Effect.try({
    try: () => {
      const file = path.join(ctx.workDir, name)
      fs.writeFileSync(file, JSON.stringify(config, null, 2) + "\n")
      return file
    },
    catch: (e) => new StageFailed({ stage: ctx.stageId, reason: `cannot write ${name}: ${String(e)}` })
  })

export const inputDatasetPrefix = (ctx: StageContext<unknown>) =>
  Effect.try({
    try: () => datasetPrefix(ctx.inputs.dataset!),
    catch: (e) => new StageFailed({ stage: ctx.stageId, reason: String(e) })
  })

/** Input names of a data blend's datasets, in order: blend0, blend1, ... */
export const blendInputName = (i: number): string => `blend${i}`

const blendInputs = (ctx: StageContext<unknown>): ReadonlyArray<string> =>
  Object.keys(ctx.inputs)
    .filter((k) => /^blend\d+$/.test(k))
    .sort((a, b) => Number(a.slice(5)) - Number(b.slice(5)))
    .map((k) => ctx.inputs[k]!)

/**
 * The worker's data section for a stage's dataset inputs: FLAME-MoE's blend when they are
 * `blend<i>` (one tokenized shard each, equally weighted, as its `--data-path 1.0 P1 1.0 P2 ...`),
 * else the one merged `dataset`.
 */
export const workerDataConfig = (ctx: StageContext<unknown>, data: DataParams) =>
  Effect.try({
    try: () => {
      const base = {
        split: data.split,
        seed: data.seed,
        ...(data.splitSamples ? { splitSamples: data.splitSamples } : {})
      }
      const blend = blendInputs(ctx)
      return blend.length > 0
        ? { ...base, blend: blend.map((dir) => ({ weight: 1, prefix: datasetPrefix(dir) })) }
        : { ...base, prefix: datasetPrefix(ctx.inputs.dataset!) }
    },
    catch: (e) => new StageFailed({ stage: ctx.stageId, reason: String(e) })
  })

/** Megatron's --data-path for the same inputs: "1.0 P1 1.0 P2 ..." for a blend, else the merged prefix. */
export const megatronDataPath = (ctx: StageContext<unknown>) =>
  Effect.try({
    try: (): ReadonlyArray<string> => {
      const blend = blendInputs(ctx)
      return blend.length > 0
        ? blend.flatMap((dir) => ["1.0", datasetPrefix(dir)])
        : [datasetPrefix(ctx.inputs.dataset!)]
    },
    catch: (e) => new StageFailed({ stage: ctx.stageId, reason: String(e) })
  })

export const workerBinary = (ctx: StageContext<unknown>): string => ctx.inputs.worker!
