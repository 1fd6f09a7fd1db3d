/**
 * Load balance per layer and checkpoint: how evenly the router spreads token-slots over the experts.
 */
import { TraceError } from "./errors.ts"
import { megatronLayerNumber } from "./layerNumber.ts"
import type { LoadBalanceResult } from "./schema.ts"
import { checkExperts, checkSameShape, DEFAULT_CHUNK_TOKENS, withTraces } from "./TraceFile.ts"

/**
 * Adds one chunk of expert ids to per-expert counts. Ids are read four at a time and counted into four
 * interleaved histograms (`scratch`, 4 x 256 int32, zeroed by the caller), so consecutive equal ids do
 * not wait on each other's increments; `counts` (256, one per possible u8 id) receives the sum.
 */
export const accumulateLoad = (ids: Uint8Array, counts: Float64Array, scratch = new Int32Array(1024)): void => {
  let i = 0
  if (ids.byteOffset % 4 === 0) {
    const words = new Uint32Array(ids.buffer, ids.byteOffset, ids.length >>> 2)
    for (let w = 0; w < words.length; w++) {
      const x = words[w]!
      scratch[x & 255]!++
      scratch[256 + ((x >>> 8) & 255)]!++
      scratch[512 + ((x >>> 16) & 255)]!++
      scratch[768 + (x >>> 24)]!++
    }
    i = words.length * 4
  }
  for (; i < ids.length; i++) scratch[ids[i]!]!++
  for (let e = 0; e < 256; e++) {
    counts[e] = counts[e]! + scratch[e]! + scratch[256 + e]! + scratch[512 + e]! + scratch[768 + e]!
  }
}

export interface LoadStats {
  readonly fractions: Array<number>
  readonly cv: number
  readonly entropy: number
  readonly normalizedEntropy: number
  readonly maxOverMean: number
}

/** Fractions of the slots, coefficient of variation (population std / mean), entropy in nats, max / mean. */
export const loadStats = (counts: Float64Array, numExperts: number): LoadStats => {
  let total = 0
  for (let e = 0; e < numExperts; e++) total += counts[e]!
  const mean = total / numExperts
  let sq = 0
  let entropy = 0
  let max = 0
  const fractions: Array<number> = []
  for (let e = 0; e < numExperts; e++) {
    const c = counts[e]!
    sq += (c - mean) * (c - mean)
    if (c > max) max = c
    const f = total === 0 ? 0 : c / total
    fractions.push(f)
    if (f > 0) entropy -= f * Math.log(f)
  }
  const std = Math.sqrt(sq / numExperts)
  return {
    fractions,
    cv: mean === 0 ? 0 : std / mean,
    entropy,
    normalizedEntropy: numExperts > 1 ? entropy / Math.log(numExperts) : 1,
    maxOverMean: mean === 0 ? 0 : max / mean
  }
}

export interface LoadBalanceInput {
  readonly scale: string
  readonly checkpoints: ReadonlyArray<{ readonly step: number; readonly file: string }>
  readonly chunkTokens?: number
}

export const loadBalance = (input: LoadBalanceInput): LoadBalanceResult => {
  if (input.checkpoints.length === 0) {
    throw new TraceError({ file: "(none)", reason: "load balance needs at least one trace" })
  }
  return withTraces(input.checkpoints.map((c) => c.file), (readers) => {
    const h = readers[0]!.header
    for (const r of readers) checkSameShape(h, r.header)
    const chunk = Math.max(1, Math.min(input.chunkTokens ?? DEFAULT_CHUNK_TOKENS, h.numTokens))
    const ids = new Uint8Array(chunk * h.topK)
    const scratch = new Int32Array(1024)
    const stats = h.layerIds.map(() =>
      readers.map((r) => {
        const counts = new Float64Array(256)
        return { r, counts }
      })
    )
    for (let layer = 0; layer < h.numLayers; layer++) {
      for (const { counts, r } of stats[layer]!) {
        for (let start = 0; start < h.numTokens; start += chunk) {
          const n = Math.min(chunk, h.numTokens - start)
          const view = r.readExperts(layer, start, n, ids)
          scratch.fill(0)
          accumulateLoad(view, counts, scratch)
          // The counts cover all 256 u8 ids: one outside the router shows up there, then gets named.
          if (counts.subarray(h.numExperts).some((c) => c > 0)) checkExperts(r.header, layer, start, view)
        }
      }
    }
    const perLayer = stats.map((perCheckpoint) => perCheckpoint.map(({ counts }) => loadStats(counts, h.numExperts)))
    return {
      analysis: "loadBalance" as const,
      scale: input.scale,
      steps: input.checkpoints.map((c) => c.step),
      layers: h.layerIds.map(megatronLayerNumber),
      numExperts: h.numExperts,
      topK: h.topK,
      tokens: h.numTokens,
      fractions: perLayer.map((l) => l.map((s) => s.fractions)),
      cv: perLayer.map((l) => l.map((s) => s.cv)),
      entropy: perLayer.map((l) => l.map((s) => s.entropy)),
      normalizedEntropy: perLayer.map((l) => l.map((s) => s.normalizedEntropy)),
      maxOverMean: perLayer.map((l) => l.map((s) => s.maxOverMean))
    }
  })
}
