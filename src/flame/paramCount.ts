/**
 * Parameter counts of a FLAME-MoE model, by the arithmetic that reproduces the published names:
 *
 *   embedding V h + untied output V h           (V = padded vocabulary, 50304 for the released models)
 * + per layer: attention 4 h^2 (QKV + output projection, no bias, no GQA) + two RMSNorm weights 2 h
 * + final RMSNorm h
 * + dense layers: SwiGLU MLP 3 h ffn (fc1 is [2 ffn, h], fc2 is [h, ffn])
 * + MoE layers: experts 3 h moeFfn each (all 64 for the total, top-6 for the active count),
 *               shared expert 3 h (2 moeFfn), router h 64.
 *
 * Which layers are dense comes from the Megatron moeLayerFreq pattern of the shape.
 */
import { publishedCounting } from "./architecture.ts"
import { moeLayerPatternOf } from "./moeLayerFreq.ts"
import type { CountingConstants, ModelShape } from "./schema.ts"

export interface ParamBreakdown {
  readonly embedding: number
  readonly output: number
  readonly attention: number
  readonly norms: number
  readonly denseMlp: number
  /** Routed experts counted for the total (all experts) ... */
  readonly routedExpertsTotal: number
  /** ... and for the active count (top-k experts per token). */
  readonly routedExpertsActive: number
  readonly sharedExperts: number
  readonly routers: number
}

export interface ParamCount {
  readonly active: number
  readonly total: number
  readonly breakdown: ParamBreakdown
}

export const countParams = (shape: ModelShape, constants: CountingConstants = publishedCounting): ParamCount => {
  const h = shape.hiddenSize
  const pattern = moeLayerPatternOf(shape.moeLayerFreq, shape.numLayers)
  const moeLayers = pattern.filter((isMoe) => isMoe).length
  const denseLayers = shape.numLayers - moeLayers
  const expert = 3 * h * shape.moeFfnHiddenSize

  const breakdown: ParamBreakdown = {
    embedding: constants.paddedVocabSize * h,
    output: constants.paddedVocabSize * h,
    attention: shape.numLayers * 4 * h * h,
    norms: shape.numLayers * 2 * h + h,
    denseMlp: denseLayers * 3 * h * shape.ffnHiddenSize,
    routedExpertsTotal: moeLayers * constants.numExperts * expert,
    routedExpertsActive: moeLayers * constants.routerTopK * expert,
    sharedExperts: moeLayers * constants.sharedExpertWidthFactor * expert,
    routers: moeLayers * h * constants.numExperts
  }
  const common = breakdown.embedding + breakdown.output + breakdown.attention + breakdown.norms +
    breakdown.denseMlp + breakdown.sharedExperts + breakdown.routers
  return {
    active: common + breakdown.routedExpertsActive,
    total: common + breakdown.routedExpertsTotal,
    breakdown
  }
}
