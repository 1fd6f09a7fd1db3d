/**
 * Expert co-activation at one checkpoint: per layer, how often expert j is chosen for the tokens that
 * choose expert i. Entry (i, j) = tokens routed to both i and j / tokens routed to i; diagonal zero.
 */
import { megatronLayerNumber } from "./layerNumber.ts"
import { accumulateLoad } from "./loadBalance.ts"
import type { CoactivationResult } from "./schema.ts"
import { checkExperts, DEFAULT_CHUNK_TOKENS, withTraces } from "./TraceFile.ts"

/**
 * Adds one chunk. A token's top-k experts are distinct, so each unordered pair of its slots is one
 * co-activation; it is counted once, at (earlier slot's expert, later slot's expert), and the two
 * triangles are folded together at the end (`coactivationMatrix`): k(k-1)/2 increments per token
 * instead of k(k-1). `pairs` is an int32 numExperts^2 chunk table: a chunk of at most 2^24 tokens cannot
 * overflow it. The tokens routed to each expert (the row normaliser) are the load counts of the same ids.
 */
export const accumulateCoactivation = (
  ids: Uint8Array,
  tokens: number,
  topK: number,
  numExperts: number,
  pairs: Int32Array
): void => {
  if (topK === 6 && numExperts === 64) return accumulateCoactivation6x64(ids, tokens, pairs)
  for (let t = 0, base = 0; t < tokens; t++, base += topK) {
    for (let a = 0; a + 1 < topK; a++) {
      const row = ids[base + a]! * numExperts
      for (let b = a + 1; b < topK; b++) pairs[row + ids[base + b]!]!++
    }
  }
}

/** FLAME-MoE's top-6 of 64, unrolled (3x faster than the loops above in V8). */
const accumulateCoactivation6x64 = (ids: Uint8Array, tokens: number, pairs: Int32Array): void => {
  for (let base = 0, end = tokens * 6; base < end; base += 6) {
    const e1 = ids[base + 1]!
    const e2 = ids[base + 2]!
    const e3 = ids[base + 3]!
    const e4 = ids[base + 4]!
    const e5 = ids[base + 5]!
    let row = ids[base]! << 6
    pairs[row + e1]!++
    pairs[row + e2]!++
    pairs[row + e3]!++
    pairs[row + e4]!++
    pairs[row + e5]!++
    row = e1 << 6
    pairs[row + e2]!++
    pairs[row + e3]!++
    pairs[row + e4]!++
    pairs[row + e5]!++
    row = e2 << 6
    pairs[row + e3]!++
    pairs[row + e4]!++
    pairs[row + e5]!++
    row = e3 << 6
    pairs[row + e4]!++
    pairs[row + e5]!++
    pairs[(e4 << 6) + e5]!++
  }
}

/** Row-normalised, symmetric counts with a zero diagonal, as rows of numbers. */
export const coactivationMatrix = (
  pairs: Float64Array,
  activations: Float64Array,
  numExperts: number
): Array<Array<number>> => {
  const rows: Array<Array<number>> = []
  for (let i = 0; i < numExperts; i++) {
    const n = activations[i]!
    const row: Array<number> = new Array(numExperts)
    for (let j = 0; j < numExperts; j++) {
      row[j] = i === j || n === 0 ? 0 : (pairs[i * numExperts + j]! + pairs[j * numExperts + i]!) / n
    }
    rows.push(row)
  }
  return rows
}

export interface CoactivationInput {
  readonly scale: string
  readonly step: number
  readonly file: string
  readonly chunkTokens?: number
}

export const expertCoactivation = (input: CoactivationInput): CoactivationResult =>
  withTraces([input.file], ([reader]) => {
    const h = reader!.header
    const E = h.numExperts
    const chunk = Math.max(1, Math.min(input.chunkTokens ?? DEFAULT_CHUNK_TOKENS, h.numTokens))
    const ids = new Uint8Array(chunk * h.topK)
    const activations: Array<Array<number>> = []
    const matrix: Array<Array<Array<number>>> = []
    for (let layer = 0; layer < h.numLayers; layer++) {
      // Ids are checked before they are counted (a typed array would silently drop an out-of-range write).
      const pairs = new Float64Array(E * E)
      const chunkPairs = new Int32Array(E * E)
      const act = new Float64Array(256)
      const scratch = new Int32Array(1024)
      for (let start = 0; start < h.numTokens; start += chunk) {
        const n = Math.min(chunk, h.numTokens - start)
        const view = reader!.readExperts(layer, start, n, ids)
        checkExperts(h, layer, start, view)
        chunkPairs.fill(0)
        accumulateCoactivation(view, n, h.topK, E, chunkPairs)
        for (let i = 0; i < E * E; i++) pairs[i] = pairs[i]! + chunkPairs[i]!
        scratch.fill(0)
        accumulateLoad(view, act, scratch)
      }
      activations.push(Array.from(act.subarray(0, E)))
      matrix.push(coactivationMatrix(pairs, act, E))
    }
    return {
      analysis: "expertCoactivation" as const,
      scale: input.scale,
      step: input.step,
      layers: h.layerIds.map(megatronLayerNumber),
      numExperts: E,
      tokens: h.numTokens,
      activations,
      matrix
    }
  })
