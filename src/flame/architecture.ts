/**
 * Architecture and training constants of FLAME-MoE, as published (configs/model/flame-moe.sh,
 * configs/train/flame-moe.sh and the model card). The project carries its own copy: nothing here is read
 * from outside the repository at run time.
 */
import type { Architecture, CountingConstants, Training } from "./schema.ts"

export const architecture: Architecture = {
  numAttentionHeads: 16,
  activation: "swiglu",
  normalization: "RMSNorm",
  normEpsilon: 1e-6,
  positionEmbedding: "rope",
  ropeBase: 10000,
  untieEmbeddingsAndOutputWeights: true,
  bias: false,
  maxPositionEmbeddings: 2048,
  firstLayerDense: true,
  numExperts: 64,
  routerTopK: 6,
  // The model card's "64 / 8 / 2": 6 routed experts plus one shared expert twice as wide (2 expert-equivalents).
  sharedExpertWidthFactor: 2,
  routerDtype: "fp32",
  routerPreSoftmax: true,
  routerScoreFunction: "softmax",
  auxLossCoeff: 0.01,
  zLossCoeff: 0.001,
  hiddenDropout: 0,
  attentionDropout: 0,
  initMethodStd: 0.02,
  tokenizer: "EleutherAI/pythia-12b (GPT-NeoX-20B byte-level BPE)",
  paddedVocabSize: 50304,
  tokenizerVocabSize: 50277
}

export const training: Training = {
  globalBatchSize: 1024,
  seqLength: 2048,
  optimizer: "adam",
  adamBeta1: 0.9,
  adamBeta2: 0.999,
  adamEps: 1e-8,
  weightDecay: 0.01,
  clipGrad: 1.0,
  lr: 3e-4,
  minLr: 3e-5,
  lrDecayStyle: "WSD",
  // Megatron's default --lr-wsd-decay-style; FLAME-MoE does not override it.
  lrWsdDecayStyle: "exponential",
  lrWarmupFraction: 0.01,
  lrWsdDecayDivisor: 10,
  precision: "bf16",
  dataSplit: [90, 5, 5],
  seed: 1234,
  // The model card's "10 checkpoints per model" counts the interval ones; the final iteration adds one more.
  checkpointsPerModel: 10,
  expertParallel: 8,
  pipelineParallel: 1
}

/** Tokens consumed by one optimizer step. */
export const tokensPerIteration = (t: Pick<Training, "globalBatchSize" | "seqLength"> = training): number =>
  t.globalBatchSize * t.seqLength

/** The constants the published parameter counts were computed with. */
export const publishedCounting: CountingConstants = {
  paddedVocabSize: architecture.paddedVocabSize,
  numExperts: architecture.numExperts,
  routerTopK: architecture.routerTopK,
  sharedExpertWidthFactor: architecture.sharedExpertWidthFactor
}
