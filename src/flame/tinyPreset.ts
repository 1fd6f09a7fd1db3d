/**
 * The `tiny` preset: the seven-scale suite shrunk so that all of it (7 trainings, then an evaluation and a
 * router trace at each of 10 checkpoints per model) runs on 2 CPU cores in minutes with the C++ worker.
 *
 * What is kept, because it is what the pipeline and the analyses exercise:
 * - the seven scales and their order of size (ids get a "-tiny" suffix so caches never mix them up);
 * - 16 attention heads, 64 experts, top-6 routing, a shared expert 2x wide, the dense first layer;
 * - the width ratios of each scale: ffn = 5.34375 h and moeFfn = 0.6875 h for all seven, so both are scaled
 *   from the shrunken hidden size by the published ratio of that scale;
 * - the relative depth (layers / 3 keeps 9 < 12 < 15 < 18 as 3 < 4 < 5 < 6, with >= 2 MoE layers);
 * - relative training length (save intervals / 200, at least 2: 20 to 60 iterations), and exactly 10
 *   checkpoints per model.
 * What changes: hidden sizes / 12.8 (rounded up to a multiple of 32, so every one of the 16 heads has an even
 * dimension for RoPE: 32, 64, 64, 96, 96, 128, 160), the vocabulary of the
 * bundled fixture tokenizer (2560 entries, padded like Megatron to a multiple of 128), 64-token sequences and
 * 8-sequence batches. With the defaults the seven trainings total about 1.5e12 FLOPs by 6 N D (the 1.7b
 * counterpart, 2.7M active / 12.5M total parameters, is 60% of it): a few minutes at the 5-10 GFLOP/s a
 * 2-core CPU worker can sustain on such small matrices. 10-shot prompts are longer than 64 tokens, so the
 * evaluation relies on the harness's left truncation (`scoringWindow` in src/eval/encoding.ts).
 * All of it is parametric: the engine owner tunes `TinyOptions` against measured times.
 */
import { architecture } from "./architecture.ts"
import { denseFirstLayerFreq } from "./moeLayerFreq.ts"
import { countParams } from "./paramCount.ts"
import { scales } from "./scales.ts"
import type { Scale, TinyScale } from "./schema.ts"

export interface TinyOptions {
  /** Hidden sizes are divided by this, then rounded up to a multiple of `hiddenMultiple`. */
  readonly hiddenDivisor: number
  /** 2 x heads: every head dimension is even, as RoPE's rotate-half needs. */
  readonly hiddenMultiple: number
  /** Layer counts are divided by this (rounded up), keeping at least one dense and two MoE layers. */
  readonly layerDivisor: number
  /** Save intervals are divided by this (rounded, at least minSaveInterval); trainIters = checkpoints * saveInterval. */
  readonly iterDivisor: number
  readonly minSaveInterval: number
  readonly checkpoints: number
  readonly seqLength: number
  readonly globalBatchSize: number
  readonly microBatchSize: number
  /** len(tokenizer) of the tokenizer the tiny corpus is encoded with. */
  readonly vocabSize: number
  /** Megatron's --make-vocab-size-divisible-by (times tensor parallelism, 1 here). */
  readonly vocabDivisibleBy: number
  readonly idSuffix: string
}

export const defaultTinyOptions: TinyOptions = {
  // 256..2048 -> 32, 64, 64, 96, 96, 128, 160: distinct where the published widths differ.
  hiddenDivisor: 12.8,
  hiddenMultiple: 32,
  layerDivisor: 3,
  iterDivisor: 200,
  minSaveInterval: 2,
  checkpoints: 10,
  seqLength: 64,
  globalBatchSize: 8,
  microBatchSize: 8,
  // fixtures/tokenizer/tokenizer.json: a byte-level BPE trained like pythia's, with 2560 entries.
  vocabSize: 2560,
  vocabDivisibleBy: 128,
  idSuffix: "-tiny"
}

const roundUpTo = (x: number, multiple: number) => Math.ceil(x / multiple) * multiple
const roundTo = (x: number, multiple: number) => Math.max(multiple, Math.round(x / multiple) * multiple)

export const tinyScaleOf = (scale: Scale, options: TinyOptions = defaultTinyOptions): TinyScale => {
  const heads = architecture.numAttentionHeads
  const hiddenSize = roundUpTo(scale.hiddenSize / options.hiddenDivisor, options.hiddenMultiple)
  // Same width ratios as the source scale; even sizes keep SwiGLU's fc1 split [2f, h] simple for the worker.
  const ffnHiddenSize = roundTo(hiddenSize * scale.ffnHiddenSize / scale.hiddenSize, 2)
  const moeFfnHiddenSize = Math.max(1, Math.round(hiddenSize * scale.moeFfnHiddenSize / scale.hiddenSize))
  const numLayers = Math.max(3, Math.ceil(scale.numLayers / options.layerDivisor))
  const saveInterval = Math.max(options.minSaveInterval, Math.round(scale.saveInterval / options.iterDivisor))
  // `checkpoints` interval saves, and, as in the published runs (2121 = 10 x 212 + 1 iterations),
  // one iteration more where the run ends off its interval: Megatron's extra final save, which
  // FLAME-MoE evaluates and takes as the routing analyses' reference.
  const trainIters = options.checkpoints * saveInterval + (scale.trainIters % scale.saveInterval === 0 ? 0 : 1)
  return {
    id: `${scale.id}${options.idSuffix}`,
    sourceId: scale.id,
    numLayers,
    hiddenSize,
    ffnHiddenSize,
    moeFfnHiddenSize,
    moeLayerFreq: denseFirstLayerFreq(numLayers),
    numAttentionHeads: heads,
    numExperts: architecture.numExperts,
    routerTopK: architecture.routerTopK,
    sharedExpertWidthFactor: architecture.sharedExpertWidthFactor,
    vocabSize: options.vocabSize,
    paddedVocabSize: roundUpTo(options.vocabSize, options.vocabDivisibleBy),
    seqLength: options.seqLength,
    globalBatchSize: options.globalBatchSize,
    microBatchSize: Math.min(options.microBatchSize, options.globalBatchSize),
    trainIters,
    saveInterval,
    evalInterval: saveInterval
  }
}

export const tinyScales = (options: TinyOptions = defaultTinyOptions): ReadonlyArray<TinyScale> =>
  scales.map((s) => tinyScaleOf(s, options))

/** Active / total parameters of a tiny scale (its own vocabulary, same expert arithmetic). */
export const tinyParamCount = (t: TinyScale) =>
  countParams(t, {
    paddedVocabSize: t.paddedVocabSize,
    numExperts: t.numExperts,
    routerTopK: t.routerTopK,
    sharedExpertWidthFactor: t.sharedExpertWidthFactor
  })

/** 6 N D of a tiny training run: a first-order cost estimate for tuning the preset. */
export const tinyTrainingFlops = (t: TinyScale): number =>
  6 * tinyParamCount(t).active * t.trainIters * t.globalBatchSize * t.seqLength
