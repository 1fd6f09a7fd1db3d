/**
 * Domain types of the published FLAME-MoE configuration. Every constant in `src/flame/` is typed by one of
 * these schemas, so a preset built elsewhere (e.g. the tiny preset) can be validated the same way.
 */
import { Schema } from "effect"

const PositiveInt = Schema.Int.pipe(Schema.positive())
const NonNegativeInt = Schema.Int.pipe(Schema.nonNegative())
const PositiveNumber = Schema.Number.pipe(Schema.positive())

/** A router picks its top k among the experts: k cannot exceed their number. */
const routerFitsExperts = (s: { readonly routerTopK: number; readonly numExperts: number }) =>
  s.routerTopK <= s.numExperts ||
  { path: ["routerTopK"], message: `${s.routerTopK} exceeds the ${s.numExperts} experts` }

/** Fixed architecture choices shared by all seven scales (Megatron flags in configs/model/flame-moe.sh). */
export const Architecture = Schema.Struct({
  numAttentionHeads: PositiveInt,
  activation: Schema.Literal("swiglu"),
  normalization: Schema.Literal("RMSNorm"),
  normEpsilon: PositiveNumber,
  positionEmbedding: Schema.Literal("rope"),
  ropeBase: PositiveNumber,
  untieEmbeddingsAndOutputWeights: Schema.Boolean,
  bias: Schema.Boolean,
  maxPositionEmbeddings: PositiveInt,
  firstLayerDense: Schema.Boolean,
  numExperts: PositiveInt,
  routerTopK: PositiveInt,
  /** The shared expert is this many routed experts wide (intermediate size = factor * moeFfnHiddenSize). */
  sharedExpertWidthFactor: PositiveInt,
  routerDtype: Schema.Literal("fp32"),
  routerPreSoftmax: Schema.Boolean,
  routerScoreFunction: Schema.Literal("softmax"),
  auxLossCoeff: Schema.Number,
  zLossCoeff: Schema.Number,
  hiddenDropout: Schema.Number,
  attentionDropout: Schema.Number,
  initMethodStd: PositiveNumber,
  tokenizer: Schema.String,
  paddedVocabSize: PositiveInt,
  /** len(tokenizer) of pythia-12b as Megatron's HuggingFaceTokenizer reports it (decides uint16 .bin files). */
  tokenizerVocabSize: PositiveInt
}).pipe(Schema.filter(routerFitsExperts))
export type Architecture = typeof Architecture.Type

/** Training hyper-parameters shared by all scales (configs/train/flame-moe.sh). */
/** Megatron's --lr-wsd-decay-style: the shape of the WSD anneal. */
export const WsdDecayStyle = Schema.Literal("exponential", "linear", "cosine", "minus_sqrt")
export type WsdDecayStyle = typeof WsdDecayStyle.Type

export const Training = Schema.Struct({
  globalBatchSize: PositiveInt,
  seqLength: PositiveInt,
  optimizer: Schema.Literal("adam"),
  adamBeta1: Schema.Number,
  adamBeta2: Schema.Number,
  adamEps: PositiveNumber,
  weightDecay: Schema.Number,
  clipGrad: PositiveNumber,
  lr: PositiveNumber,
  minLr: PositiveNumber,
  lrDecayStyle: Schema.Literal("WSD"),
  lrWsdDecayStyle: WsdDecayStyle,
  lrWarmupFraction: Schema.Number.pipe(Schema.between(0, 1)),
  /** lr-wsd-decay-iters = floor(trainIters / this). */
  lrWsdDecayDivisor: PositiveInt,
  precision: Schema.Literal("bf16"),
  dataSplit: Schema.Tuple(NonNegativeInt, NonNegativeInt, NonNegativeInt),
  seed: NonNegativeInt,
  checkpointsPerModel: PositiveInt,
  expertParallel: PositiveInt,
  pipelineParallel: PositiveInt
}).pipe(Schema.filter((t) => t.minLr <= t.lr || { path: ["minLr"], message: `${t.minLr} exceeds lr ${t.lr}` }))
export type Training = typeof Training.Type

/**
 * The shape of one model: what parameter counts and FLOPs depend on. `moeLayerFreq` is Megatron's
 * --moe-layer-freq string, e.g. "[0]*1+[1]*8" (first layer dense, eight MoE layers).
 */
export const ModelShape = Schema.Struct({
  numLayers: PositiveInt,
  hiddenSize: PositiveInt,
  ffnHiddenSize: PositiveInt,
  moeFfnHiddenSize: PositiveInt,
  moeLayerFreq: Schema.String
})
export type ModelShape = typeof ModelShape.Type

/** Figures printed in the model card, kept as printed ("38M", "1.3B") plus the numbers. */
export const PublishedFigures = Schema.Struct({
  activeParams: Schema.String,
  totalParams: Schema.String,
  trainingFlops: PositiveNumber,
  tokensTrained: PositiveNumber
})
export type PublishedFigures = typeof PublishedFigures.Type

export const ScaleId = Schema.Literal(
  "flame-moe-38m",
  "flame-moe-98m",
  "flame-moe-115m",
  "flame-moe-290m",
  "flame-moe-419m",
  "flame-moe-721m",
  "flame-moe-1.7b"
)
export type ScaleId = typeof ScaleId.Type

/** One released model: its shape plus how it was trained and checkpointed (scripts/release/flame-moe-*.sh). */
export const Scale = Schema.Struct({
  id: ScaleId,
  name: Schema.String,
  ...ModelShape.fields,
  microBatchSize: PositiveInt,
  trainIters: PositiveInt,
  saveInterval: PositiveInt,
  evalInterval: PositiveInt,
  published: PublishedFigures
})
export type Scale = typeof Scale.Type

/** One run of the scaling-law ablation (scripts/ablation/search.sh): a shape trained for a FLOPs budget. */
export const AblationPoint = Schema.Struct({
  hiddenSize: PositiveInt,
  ffnHiddenSize: PositiveInt,
  moeFfnHiddenSize: PositiveInt,
  numLayers: PositiveInt,
  microBatchSize: PositiveInt,
  expertParallel: PositiveInt,
  trainIters: PositiveInt,
  flopsBudget: PositiveNumber
})
export type AblationPoint = typeof AblationPoint.Type

/** What the parameter arithmetic needs besides the shape. */
export const CountingConstants = Schema.Struct({
  paddedVocabSize: PositiveInt,
  numExperts: PositiveInt,
  routerTopK: PositiveInt,
  sharedExpertWidthFactor: NonNegativeInt
}).pipe(Schema.filter(routerFitsExperts))
export type CountingConstants = typeof CountingConstants.Type

/**
 * A shrunken counterpart of a released scale, for CPU-only runs of the whole lifecycle. It carries every
 * constant a worker needs, because unlike the released scales it does not share the published ones.
 */
export const TinyScale = Schema.Struct({
  id: Schema.String,
  sourceId: ScaleId,
  ...ModelShape.fields,
  numAttentionHeads: PositiveInt,
  numExperts: PositiveInt,
  routerTopK: PositiveInt,
  sharedExpertWidthFactor: PositiveInt,
  vocabSize: PositiveInt,
  paddedVocabSize: PositiveInt,
  seqLength: PositiveInt,
  globalBatchSize: PositiveInt,
  microBatchSize: PositiveInt,
  trainIters: PositiveInt,
  saveInterval: PositiveInt,
  evalInterval: PositiveInt
}).pipe(Schema.filter((t) => {
  const issues: Array<Schema.FilterIssue> = []
  const fits = routerFitsExperts(t)
  if (fits !== true) issues.push(fits)
  if (t.hiddenSize % t.numAttentionHeads !== 0) {
    issues.push({
      path: ["hiddenSize"],
      message: `${t.hiddenSize} is not divisible by the ${t.numAttentionHeads} attention heads`
    })
  }
  if (t.globalBatchSize % t.microBatchSize !== 0) {
    issues.push({
      path: ["globalBatchSize"],
      message: `${t.globalBatchSize} is not a multiple of microBatchSize ${t.microBatchSize}`
    })
  }
  return issues
}))
export type TinyScale = typeof TinyScale.Type
