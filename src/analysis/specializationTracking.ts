/**
 * Expert specialization followed over training, as FLAME-MoE's specialization notebook follows it: at the
 * final checkpoint each expert's most specialised tokens are picked (FLAME-MoE: the top 2 among tokens seen
 * at least 5 times), and their scores — occurrences routed to the expert / occurrences — are read at every
 * checkpoint. Besides, at each checkpoint the expert's own top tokens are ranked the same way, which says
 * whether the tokens an expert is most specialised in stay the same from one checkpoint to the next.
 *
 * Reads the full counts each checkpoint's specialization analysis wrote (specializationCounts.ts), one
 * checkpoint at a time, and ranks tokens exactly as the per-checkpoint summary does (summarizeLayer): a
 * token's score, then its occurrences, then the lower id. Only tokens an expert received at least once are
 * ranked, so an expert may have fewer than `topTokens` (FLAME-MoE's top-k would fill the list with tokens of
 * score 0, in no defined order).
 */
import { TraceMismatch } from "./errors.ts"
import { megatronLayerNumber } from "./layerNumber.ts"
import type { SpecializationTracking } from "./schema.ts"
import { summarizeLayer } from "./specialization.ts"
import { readSpecializationCounts, type SpecializationCounts } from "./specializationCounts.ts"

export interface TrackingInput {
  readonly scale: string
  /** Each checkpoint's counts file, in training order: the last is the final checkpoint. */
  readonly checkpoints: ReadonlyArray<{ readonly step: number; readonly file: string }>
  readonly minOccurrences: number
  readonly topTokens: number
}

interface Ranked {
  readonly token: number
  readonly occurrences: number
  readonly score: number
}

/** Per layer, per expert: the expert's top tokens at one checkpoint, by token id. */
const topTokensOf = (
  counts: SpecializationCounts,
  minOccurrences: number,
  topTokens: number
): Array<Array<Array<Ranked>>> =>
  counts.routed.map((routed, l) =>
    // The counts are compacted to the tokens that occur: rank positions, then map them back to token ids.
    summarizeLayer(
      l,
      { routed, occurrences: counts.occurrences },
      counts.numExperts,
      counts.tokenIds.length,
      minOccurrences,
      topTokens
    ).experts.map((e) =>
      e.top.map((t) => ({ token: counts.tokenIds[t.token]!, occurrences: t.occurrences, score: t.score }))
    )
  )

const sameSet = (a: ReadonlyArray<Ranked>, b: ReadonlyArray<Ranked>) =>
  a.length === b.length && a.every((x) => b.some((y) => y.token === x.token))

const meanOf = (xs: ReadonlyArray<number>): number | null =>
  xs.length === 0 ? null : xs.reduce((s, x) => s + x, 0) / xs.length

export const trackSpecialization = (input: TrackingInput): SpecializationTracking => {
  const last = input.checkpoints[input.checkpoints.length - 1]
  if (last === undefined) throw new Error(`specialization tracking of ${input.scale}: no checkpoints`)
  const final = readSpecializationCounts(last.file)
  const E = final.numExperts
  const L = final.layerIds.length
  const S = input.checkpoints.length
  const finalTop = topTokensOf(final, input.minOccurrences, input.topTokens)
  // [layer][expert][rank][step]
  const scores = finalTop.map((experts) => experts.map((top) => top.map(() => new Array<number>(S).fill(0))))
  // [layer][expert][step]
  const tops: Array<Array<Array<ReadonlyArray<Ranked>>>> = finalTop.map((experts) => experts.map(() => []))

  input.checkpoints.forEach(({ file, step }, s) => {
    const counts = s === S - 1 ? final : readSpecializationCounts(file)
    if (counts.numExperts !== E || counts.layerIds.join() !== final.layerIds.join()) {
      throw new TraceMismatch({
        file,
        reference: last.file,
        field: "layers and experts",
        reason: `step ${step} counts layers [${counts.layerIds.join(", ")}] of ${counts.numExperts} experts, ` +
          `the final checkpoint [${final.layerIds.join(", ")}] of ${E}`
      })
    }
    const position = new Map<number, number>()
    counts.tokenIds.forEach((token, u) => position.set(token, u))
    const atStep = s === S - 1 ? finalTop : topTokensOf(counts, input.minOccurrences, input.topTokens)
    for (let l = 0; l < L; l++) {
      const routed = counts.routed[l]!
      for (let e = 0; e < E; e++) {
        tops[l]![e]![s] = atStep[l]![e]!
        finalTop[l]![e]!.forEach((tracked, rank) => {
          const u = position.get(tracked.token)
          const occurrences = u === undefined ? 0 : counts.occurrences[u]!
          // A token missing from a checkpoint's trace has no score there: 0, as FLAME-MoE's notebook gives it.
          scores[l]![e]![rank]![s] = occurrences === 0 ? 0 : routed[u! * E + e]! / occurrences
        })
      }
    }
  })

  const steps = input.checkpoints.map((c) => c.step)
  return {
    analysis: "specializationTracking" as const,
    scale: input.scale,
    steps,
    finalStep: last.step,
    layers: final.layerIds.map(megatronLayerNumber),
    numExperts: E,
    minOccurrences: input.minOccurrences,
    topTokens: input.topTokens,
    perLayer: final.layerIds.map((id, l) => {
      const experts = tops[l]!
      const withFinal = experts.map((_, e) => e).filter((e) => finalTop[l]![e]!.length > 0)
      return {
        layer: megatronLayerNumber(id),
        meanTopScore: steps.map((_, s) => experts.reduce((sum, top) => sum + (top[s]![0]?.score ?? 0), 0) / E),
        meanTrackedScore: Array.from({ length: input.topTokens }, (_, rank) =>
          steps.map((_, s) =>
            meanOf(
              experts.flatMap((_, e) => {
                const tracked = scores[l]![e]![rank]
                return tracked === undefined ? [] : [tracked[s]!]
              })
            )
          )),
        sameAsFinal: steps.map((_, s) =>
          meanOf(withFinal.map((e) => (sameSet(experts[e]![s]!, finalTop[l]![e]!) ? 1 : 0)))
        ),
        sameAsPrevious: steps.map((_, s) =>
          s === 0 ? null : meanOf(
            experts.flatMap((top) =>
              top[s]!.length === 0 && top[s - 1]!.length === 0 ? [] : [sameSet(top[s]!, top[s - 1]!) ? 1 : 0]
            )
          )
        ),
        experts: experts.map((top, e) => ({
          expert: e,
          tracked: finalTop[l]![e]!.map((t, rank) => ({
            token: t.token,
            occurrences: t.occurrences,
            scores: scores[l]![e]![rank]!
          })),
          top: top.map((atStep) => atStep.map((t) => t.token))
        }))
      }
    })
  }
}
