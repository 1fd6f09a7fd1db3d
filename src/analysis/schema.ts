/**
 * What the routing analyses write (the JSON outputs of the analysis stages), as Schemas so the report
 * and other readers decode them instead of trusting their shape. Arrays are indexed the way their
 * comments say. Layers are named by Megatron's 1-based layer_number over all layers (layerNumber.ts):
 * `layers` lists the MoE layers' numbers in model order and `perLayer[].layer` is one of them; FLAME-MoE's
 * first layer is dense, so its MoE layers are 2..numLayers. (trace.bin stores the worker's 0-based indices.)
 */
import { Schema } from "effect"

const Int = Schema.Int
const Matrix = Schema.Array(Schema.Array(Schema.Number))

/**
 * Router saturation (facts: routerTraces.analyses.routerSaturation): for each k, the fraction of a token's
 * top-k experts at a checkpoint that are also among its top-k at the final checkpoint, averaged over tokens.
 */
export const SaturationResult = Schema.Struct({
  analysis: Schema.Literal("routerSaturation"),
  scale: Schema.String,
  steps: Schema.Array(Int),
  finalStep: Int,
  ks: Schema.Array(Int),
  /** Megatron layer numbers (1-based, layerNumber.ts) of the traced MoE layers; `[layer]` indexes this list. */
  layers: Schema.Array(Int),
  tokens: Int,
  /** [layer][step][k index]: in [0, 1]; 1 at the final step. */
  saturation: Schema.Array(Matrix)
})
export type SaturationResult = typeof SaturationResult.Type

/**
 * Load balance per layer and checkpoint: the fraction of routed token-slots each expert receives
 * (count_e / (tokens * topK), summing to 1), the coefficient of variation of the counts (population
 * standard deviation over the mean), the entropy of the fractions in nats, and max over mean.
 */
export const LoadBalanceResult = Schema.Struct({
  analysis: Schema.Literal("loadBalance"),
  scale: Schema.String,
  steps: Schema.Array(Int),
  /** Megatron layer numbers (1-based, layerNumber.ts) of the traced MoE layers; `[layer]` indexes this list. */
  layers: Schema.Array(Int),
  numExperts: Int,
  topK: Int,
  tokens: Int,
  /** [layer][step][expert] */
  fractions: Schema.Array(Matrix),
  /** [layer][step] */
  cv: Matrix,
  entropy: Matrix,
  /** entropy / ln(numExperts): 1 is perfectly balanced. */
  normalizedEntropy: Matrix,
  maxOverMean: Matrix
})
export type LoadBalanceResult = typeof LoadBalanceResult.Type

/**
 * Expert co-activation (facts: routerTraces.analyses.expertCoactivation) at one checkpoint: per layer an
 * E x E matrix, entry (i, j) = tokens routed to both i and j / tokens routed to i; diagonal zero; a row of
 * an expert that received no token is all zero.
 */
export const CoactivationResult = Schema.Struct({
  analysis: Schema.Literal("expertCoactivation"),
  scale: Schema.String,
  step: Int,
  /** Megatron layer numbers (1-based, layerNumber.ts) of the traced MoE layers; `[layer]` indexes this list. */
  layers: Schema.Array(Int),
  numExperts: Int,
  tokens: Int,
  /** [layer][expert]: tokens routed to the expert (the row normaliser). */
  activations: Matrix,
  /** [layer][i][j] */
  matrix: Schema.Array(Matrix)
})
export type CoactivationResult = typeof CoactivationResult.Type

export const SpecializedToken = Schema.Struct({
  token: Int,
  routed: Int,
  occurrences: Int,
  /** routed / occurrences */
  score: Schema.Number
})

/**
 * Expert specialization (facts: routerTraces.analyses.expertSpecialization) at one checkpoint: for each
 * expert and token id, occurrences of the token routed to the expert / occurrences of the token. The full
 * counts are in the stage's binary output (specializationCounts.ts); this is the summary: per expert the
 * most specialised tokens among those seen at least `minOccurrences` times.
 */
export const SpecializationSummary = Schema.Struct({
  analysis: Schema.Literal("expertSpecialization"),
  scale: Schema.String,
  step: Int,
  /** Megatron layer numbers (1-based, layerNumber.ts) of the traced MoE layers; `[layer]` indexes this list. */
  layers: Schema.Array(Int),
  numExperts: Int,
  topK: Int,
  vocabSize: Int,
  tokens: Int,
  distinctTokens: Int,
  minOccurrences: Int,
  /** Token ids seen at least minOccurrences times: the population the scores below are taken over. */
  eligibleTokens: Int,
  perLayer: Schema.Array(Schema.Struct({
    /** Megatron layer number (1-based), as in `layers`. */
    layer: Int,
    /** Mean over experts of the expert's highest score (an expert that saw no eligible token counts 0). */
    meanTopScore: Schema.Number,
    /** Mean over eligible tokens of their highest score over experts (1 when a token always uses one expert). */
    meanTokenMaxScore: Schema.Number,
    experts: Schema.Array(Schema.Struct({
      expert: Int,
      /** Token-slots routed to the expert. */
      routed: Int,
      top: Schema.Array(SpecializedToken)
    }))
  }))
})
export type SpecializationSummary = typeof SpecializationSummary.Type

/**
 * Expert specialization over training (specializationTracking.ts), as FLAME-MoE's notebook follows it:
 * each expert's top `topTokens` tokens at the final checkpoint (among tokens seen at least `minOccurrences`
 * times) and their scores (routed / occurrences) at every checkpoint; and, per checkpoint, each expert's
 * own top tokens ranked the same way. Arrays over checkpoints are indexed like `steps`.
 */
export const SpecializationTracking = Schema.Struct({
  analysis: Schema.Literal("specializationTracking"),
  scale: Schema.String,
  steps: Schema.Array(Int),
  finalStep: Int,
  /** Megatron layer numbers (1-based, layerNumber.ts) of the traced MoE layers; `perLayer` follows this list. */
  layers: Schema.Array(Int),
  numExperts: Int,
  minOccurrences: Int,
  topTokens: Int,
  perLayer: Schema.Array(Schema.Struct({
    layer: Int,
    /** [step]: mean over experts of the expert's highest score at that checkpoint (0 for an expert without one). */
    meanTopScore: Schema.Array(Schema.Number),
    /**
     * [rank][step]: mean, over the experts that have a final token of that rank, of the token's score at the
     * checkpoint; null when no expert has one.
     */
    meanTrackedScore: Schema.Array(Schema.Array(Schema.NullOr(Schema.Number))),
    /** [step]: fraction of the experts with final top tokens whose top tokens at the checkpoint are the same set. */
    sameAsFinal: Schema.Array(Schema.NullOr(Schema.Number)),
    /** [step]: fraction of experts whose top tokens are the same set as at the previous checkpoint (null first). */
    sameAsPrevious: Schema.Array(Schema.NullOr(Schema.Number)),
    experts: Schema.Array(Schema.Struct({
      expert: Int,
      /** The final checkpoint's top tokens, best first, with their score at every checkpoint. */
      tracked: Schema.Array(Schema.Struct({
        token: Int,
        occurrences: Int,
        scores: Schema.Array(Schema.Number)
      })),
      /** [step]: the expert's top token ids at that checkpoint, best first. */
      top: Schema.Array(Schema.Array(Int))
    }))
  }))
})
export type SpecializationTracking = typeof SpecializationTracking.Type
