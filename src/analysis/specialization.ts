/**
 * Expert specialization at one checkpoint: for each expert and token id, how many occurrences of the
 * token were routed to the expert, over how many occurrences of the token there are. Counted for every
 * layer over the whole trace; the full counts go to a binary file (specializationCounts.ts), the
 * summary (most specialised tokens per expert) to JSON.
 */
import { TraceError } from "./errors.ts"
import { megatronLayerNumber } from "./layerNumber.ts"
import type { SpecializationSummary } from "./schema.ts"
import { SpecializationCountsWriter } from "./specializationCounts.ts"
import { checkExperts, DEFAULT_CHUNK_TOKENS, type TraceHeader, withTraces } from "./TraceFile.ts"

/**
 * Adds one chunk: `routed` is token-major (vocabSize x numExperts), so a token's k increments land in one
 * short row. Returns the index (within the chunk) of the first token id outside [0, vocabSize), or -1;
 * counting stops there.
 */
export const accumulateSpecialization = (
  ids: Uint8Array,
  tokenIds: Int32Array,
  tokens: number,
  topK: number,
  numExperts: number,
  vocabSize: number,
  routed: Uint32Array,
  occurrences: Uint32Array | undefined
): number => {
  if (topK === 6 && numExperts === 64) {
    return accumulateSpecialization6x64(ids, tokenIds, tokens, vocabSize, routed, occurrences)
  }
  for (let t = 0, base = 0; t < tokens; t++, base += topK) {
    const token = tokenIds[t]!
    if (token >>> 0 >= vocabSize) return t
    if (occurrences !== undefined) occurrences[token]!++
    const row = token * numExperts
    for (let j = 0; j < topK; j++) routed[row + ids[base + j]!]!++
  }
  return -1
}

/** FLAME-MoE's top-6 of 64, unrolled. */
const accumulateSpecialization6x64 = (
  ids: Uint8Array,
  tokenIds: Int32Array,
  tokens: number,
  vocabSize: number,
  routed: Uint32Array,
  occurrences: Uint32Array | undefined
): number => {
  for (let t = 0, base = 0; t < tokens; t++, base += 6) {
    const token = tokenIds[t]!
    if (token >>> 0 >= vocabSize) return t
    if (occurrences !== undefined) occurrences[token]!++
    const row = token << 6
    routed[row + ids[base]!]!++
    routed[row + ids[base + 1]!]!++
    routed[row + ids[base + 2]!]!++
    routed[row + ids[base + 3]!]!++
    routed[row + ids[base + 4]!]!++
    routed[row + ids[base + 5]!]!++
  }
  return -1
}

interface Ranked {
  readonly token: number
  readonly routed: number
  readonly occurrences: number
  readonly score: number
}

/** Higher score first; among equal scores the better-supported token, then the lower id (deterministic). */
const better = (a: Ranked, b: Ranked) =>
  a.score !== b.score
    ? a.score > b.score
    : a.occurrences !== b.occurrences
    ? a.occurrences > b.occurrences
    : a.token < b.token

const insertTop = (top: Array<Ranked>, item: Ranked, limit: number) => {
  if (top.length === limit && !better(item, top[limit - 1]!)) return
  let i = top.length < limit ? top.length : limit - 1
  top[i] = item
  while (i > 0 && better(item, top[i - 1]!)) {
    top[i] = top[i - 1]!
    top[i - 1] = item
    i--
  }
}

export interface SpecializationInput {
  readonly scale: string
  readonly step: number
  readonly file: string
  readonly vocabSize: number
  /** Tokens seen fewer times than this are left out of the summary (their ratios are mostly noise). */
  readonly minOccurrences: number
  /** Tokens listed per expert in the summary. */
  readonly topTokens: number
  /** Where the full counts are written. */
  readonly countsFile: string
  readonly chunkTokens?: number
}

/** Summary of one layer's counts. */
export const summarizeLayer = (
  layer: number,
  counts: { readonly routed: Uint32Array; readonly occurrences: ArrayLike<number> },
  numExperts: number,
  vocabSize: number,
  minOccurrences: number,
  topTokens: number
): SpecializationSummary["perLayer"][number] => {
  const tops: Array<Array<Ranked>> = Array.from({ length: numExperts }, () => [])
  const slots = new Float64Array(numExperts)
  let eligible = 0
  let tokenMaxSum = 0
  for (let token = 0; token < vocabSize; token++) {
    const occ = counts.occurrences[token]!
    // A token that never occurs has an all-zero row: most of the vocabulary, in a trace.
    if (occ === 0) continue
    const row = token * numExperts
    for (let e = 0; e < numExperts; e++) slots[e]! += counts.routed[row + e]!
    if (occ < minOccurrences) continue
    eligible++
    let tokenMax = 0
    for (let e = 0; e < numExperts; e++) {
      const routed = counts.routed[row + e]!
      if (routed === 0) continue
      const score = routed / occ
      if (score > tokenMax) tokenMax = score
      const top = tops[e]!
      // Most candidates lose to a full list's last entry: compare before building one.
      if (top.length === topTokens && score < top[topTokens - 1]!.score) continue
      insertTop(top, { token, routed, occurrences: occ, score }, topTokens)
    }
    tokenMaxSum += tokenMax
  }
  return {
    layer,
    meanTopScore: tops.reduce((sum, top) => sum + (top[0]?.score ?? 0), 0) / numExperts,
    meanTokenMaxScore: eligible === 0 ? 0 : tokenMaxSum / eligible,
    experts: tops.map((top, expert) => ({ expert, routed: slots[expert]!, top }))
  }
}

export const expertSpecialization = (input: SpecializationInput): SpecializationSummary =>
  withTraces([input.file], ([reader]) => {
    const h: TraceHeader = reader!.header
    const V = input.vocabSize
    const E = h.numExperts
    if (h.numTokens >= 2 ** 32) {
      throw new TraceError({ file: h.file, reason: `${h.numTokens} tokens overflow the 32-bit per-token counters` })
    }
    const chunk = Math.max(1, Math.min(input.chunkTokens ?? DEFAULT_CHUNK_TOKENS, h.numTokens))
    const ids = new Uint8Array(chunk * h.topK)
    const tokenIds = new Int32Array(chunk)
    const occurrences = new Uint32Array(V)
    const routed = new Uint32Array(V * E)
    const perLayer: Array<SpecializationSummary["perLayer"][number]> = []
    let writer: SpecializationCountsWriter | undefined
    try {
      for (let layer = 0; layer < h.numLayers; layer++) {
        routed.fill(0)
        for (let start = 0; start < h.numTokens; start += chunk) {
          const n = Math.min(chunk, h.numTokens - start)
          reader!.readTokens(start, n, tokenIds)
          const view = reader!.readExperts(layer, start, n, ids)
          checkExperts(h, layer, start, view)
          // Every layer routes the same tokens: occurrences are counted on the first pass only.
          const bad = accumulateSpecialization(
            view,
            tokenIds,
            n,
            h.topK,
            E,
            V,
            routed,
            layer === 0 ? occurrences : undefined
          )
          if (bad >= 0) {
            throw new TraceError({
              file: h.file,
              reason: `token ${start + bad} has id ${tokenIds[bad]}, outside the vocabulary of ${V}`
            })
          }
        }
        writer ??= new SpecializationCountsWriter(
          input.countsFile,
          h.layerIds,
          E,
          V,
          presentTokens(occurrences),
          occurrences
        )
        writer.appendLayer(routed)
        perLayer.push(
          summarizeLayer(
            megatronLayerNumber(h.layerIds[layer]!),
            { routed, occurrences },
            E,
            V,
            input.minOccurrences,
            input.topTokens
          )
        )
      }
      writer!.finish()
    } catch (e) {
      writer?.abort()
      throw e
    }
    let distinct = 0
    let eligible = 0
    for (let token = 0; token < V; token++) {
      const occ = occurrences[token]!
      if (occ > 0) distinct++
      if (occ > 0 && occ >= input.minOccurrences) eligible++
    }
    return {
      analysis: "expertSpecialization" as const,
      scale: input.scale,
      step: input.step,
      layers: h.layerIds.map(megatronLayerNumber),
      numExperts: E,
      topK: h.topK,
      vocabSize: V,
      tokens: h.numTokens,
      distinctTokens: distinct,
      minOccurrences: input.minOccurrences,
      eligibleTokens: eligible,
      perLayer
    }
  })

const presentTokens = (occurrences: Uint32Array): Uint32Array => {
  const out: Array<number> = []
  for (let token = 0; token < occurrences.length; token++) if (occurrences[token]! > 0) out.push(token)
  return Uint32Array.from(out)
}
