/**
 * How concentrated expert co-activation is, per MoE layer: two numbers per layer of one checkpoint's
 * co-activation result (coactivation.ts), so that co-activation can be followed over training as FLAME-MoE
 * follows it by computing the matrix at every checkpoint.
 *
 * A row of the matrix (expert i) holds, for every other expert j, the fraction of i's tokens that also go
 * to j. Each token routed to i goes to k - 1 other, distinct experts, so a row of an expert that received
 * tokens sums to k - 1 whatever the routing: how that mass is spread is what changes. Spread evenly, each
 * partner gets 1 / (E - 1) of it; an expert that always fires with the same partner gives it all.
 */
import { AnalysisInputError } from "./errors.ts"
import type { CoactivationResult } from "./schema.ts"

export interface LayerConcentration {
  /** Megatron layer number (1-based), as the result names it. */
  readonly layer: number
  /**
   * Mean, over the experts that received tokens, of the largest entry of the expert's row over the row's
   * sum: the share of its co-activations that go to its most frequent partner. 1 / (E - 1) when even.
   */
  readonly topPartnerShare: number
  /** The largest off-diagonal entry: the fraction of some expert's tokens that some other expert also takes. */
  readonly maxCoactivation: number
}

export const coactivationConcentration = (result: CoactivationResult): ReadonlyArray<LayerConcentration> =>
  result.layers.map((layer, l) => {
    const matrix = result.matrix[l] ?? []
    let shares = 0
    let active = 0
    let max = 0
    matrix.forEach((row, i) => {
      let sum = 0
      let rowMax = 0
      row.forEach((v, j) => {
        if (i === j) return
        sum += v
        if (v > rowMax) rowMax = v
      })
      if (rowMax > max) max = rowMax
      // An expert that received no token has an all-zero row: it has no partners to share among.
      if (sum > 0) {
        shares += rowMax / sum
        active++
      }
    })
    return { layer, topPartnerShare: active === 0 ? 0 : shares / active, maxCoactivation: max }
  })

/** Co-activation concentration of one scale at each of its checkpoints, indexed [layer][step]. */
export interface CoactivationOverTraining {
  readonly scale: string
  /** Checkpoint steps, ascending. */
  readonly steps: ReadonlyArray<number>
  readonly layers: ReadonlyArray<number>
  readonly numExperts: number
  readonly topPartnerShare: ReadonlyArray<ReadonlyArray<number>>
  readonly maxCoactivation: ReadonlyArray<ReadonlyArray<number>>
}

/**
 * Lines the results of one scale's checkpoints up by step. They must trace the same MoE layers and
 * experts: results of different models cannot be compared.
 */
export const coactivationOverTraining = (results: ReadonlyArray<CoactivationResult>): CoactivationOverTraining => {
  const sorted = [...results].sort((a, b) => a.step - b.step)
  const first = sorted[0]
  if (first === undefined) throw new AnalysisInputError({ what: "co-activation over training", reason: "no results" })
  for (const r of sorted) {
    const where = `co-activation of ${r.scale} at step ${r.step}`
    if (r.scale !== first.scale) {
      throw new AnalysisInputError({ what: where, reason: `another scale than step ${first.step}'s (${first.scale})` })
    }
    if (r.numExperts !== first.numExperts || r.layers.join() !== first.layers.join()) {
      throw new AnalysisInputError({
        what: where,
        reason: `layers [${r.layers.join(", ")}] of ${r.numExperts} experts, but step ${first.step} has ` +
          `[${first.layers.join(", ")}] of ${first.numExperts}`
      })
    }
  }
  const summaries = sorted.map(coactivationConcentration)
  return {
    scale: first.scale,
    steps: sorted.map((r) => r.step),
    layers: first.layers,
    numExperts: first.numExperts,
    topPartnerShare: first.layers.map((_, l) => summaries.map((s) => s[l]!.topPartnerShare)),
    maxCoactivation: first.layers.map((_, l) => summaries.map((s) => s[l]!.maxCoactivation))
  }
}
