/**
 * Two FLOPs figures:
 *
 * - `megatronFlopsPerIteration`: what Megatron logs (and divides by time for TFLOP/s/GPU). Its formula is
 *     12 B s L h^2 [ (1 + g/a + s/(2h)) (q/h)
 *                    + (ffn n_dense + (f_moe k + f_shared) n_moe) 1.5 / (L h)
 *                    + V / (2 L h) ]
 *   with B the global batch (sequences per iteration), s the sequence length, a the heads, g the query groups
 *   (= a without GQA, so g/a = 1), q the query projection size (= a * head dim = h here, so q/h = 1),
 *   k the router top-k, 1.5 the SwiGLU factor (3 matrices instead of 2), V the padded vocabulary.
 *   Multiplied out per token and layer, each term is 6 FLOPs (2 forward, 4 backward) per matmul weight the
 *   token touches, which is the meaning to check against:
 *     attention projections 12 h q (1 + g/a) = 6 (h q [Q] + h q [output] + 2 h q g/a [K, V]),
 *     attention scores      6 s q             = QK^T and AV over a causal (half) s x s window,
 *     dense MLP             18 h ffn          = 6 (3 h ffn),  MoE MLP 18 h (k f_moe + f_shared),
 *     logits (once)         6 h V             = 6 (h V).
 *   It leaves out the router (h x 64 per MoE layer), the norms and the input embedding lookup, so it is not
 *   6 N per token even without the attention-score term.
 *
 * - `sixNDFlops`: the 6 N D budget of the paper, N = active parameters (embeddings included), D = tokens.
 */
import { architecture, training } from "./architecture.ts"
import { moeLayerPatternOf } from "./moeLayerFreq.ts"
import type { ModelShape } from "./schema.ts"

export interface FlopsSettings {
  readonly globalBatchSize: number
  readonly seqLength: number
  readonly numAttentionHeads: number
  /** Query groups; equal to numAttentionHeads when grouped-query attention is off (FLAME-MoE). */
  readonly numQueryGroups: number
  /** Query projection size = heads * head dim; equal to hiddenSize for FLAME-MoE. Undefined means hiddenSize. */
  readonly queryProjectionSize?: number
  readonly routerTopK: number
  readonly sharedExpertWidthFactor: number
  readonly paddedVocabSize: number
}

export const publishedFlopsSettings: FlopsSettings = {
  globalBatchSize: training.globalBatchSize,
  seqLength: training.seqLength,
  numAttentionHeads: architecture.numAttentionHeads,
  numQueryGroups: architecture.numAttentionHeads,
  routerTopK: architecture.routerTopK,
  sharedExpertWidthFactor: architecture.sharedExpertWidthFactor,
  paddedVocabSize: architecture.paddedVocabSize
}

export const megatronFlopsPerIteration = (
  shape: ModelShape,
  settings: FlopsSettings = publishedFlopsSettings
): number => {
  const B = settings.globalBatchSize
  const s = settings.seqLength
  const L = shape.numLayers
  const h = shape.hiddenSize
  const q = settings.queryProjectionSize ?? h
  const pattern = moeLayerPatternOf(shape.moeLayerFreq, L)
  const nMoe = pattern.filter((isMoe) => isMoe).length
  const nDense = L - nMoe
  const fShared = settings.sharedExpertWidthFactor * shape.moeFfnHiddenSize

  const attention = (1 + settings.numQueryGroups / settings.numAttentionHeads + s / (2 * h)) * (q / h)
  const mlp = (shape.ffnHiddenSize * nDense + (shape.moeFfnHiddenSize * settings.routerTopK + fShared) * nMoe) * 1.5 /
    (L * h)
  const logits = settings.paddedVocabSize / (2 * L * h)
  return 12 * B * s * L * h * h * (attention + mlp + logits)
}

/** The training budget as the paper states it: 6 * active parameters * tokens. */
export const sixNDFlops = (activeParams: number, tokens: number): number => 6 * activeParams * tokens
