/**
 * Router saturation: how much of a token's routing at a checkpoint already agrees with the final one.
 * For k in `ks`, the fraction of the token's top-k experts at checkpoint t that are also among its top-k
 * at the final checkpoint, averaged over tokens, per layer.
 */
import { TraceError, TraceMismatch } from "./errors.ts"
import { megatronLayerNumber } from "./layerNumber.ts"
import type { SaturationResult } from "./schema.ts"
import { checkExperts, checkSameShape, DEFAULT_CHUNK_TOKENS, withTraces } from "./TraceFile.ts"

/**
 * Scratch for `accumulateSaturation`: expert -> its slot at the final checkpoint, or topK when the
 * expert is not among the token's final experts.
 */
export const saturationScratch = (topK: number): Uint16Array => new Uint16Array(256).fill(topK)

/**
 * Adds one chunk of tokens. Slot j of a token at the checkpoint holds an expert that sits in slot p of the
 * same token at the final checkpoint (p = topK when it is not there). That expert is in both top-k sets
 * exactly when max(j, p) < k, so one histogram of max(j, p) (topK + 1 bins, the last one "in neither")
 * gives the intersection sizes for every k at once:
 * sum over tokens of |top_k(t) ∩ top_k(final)| = hist[0] + ... + hist[k - 1].
 * `position` must be all topK on entry; it is left so. The max is branch-free: whether an expert is
 * still routed the same way is a coin flip early in training, which a branch would mispredict.
 */
export const accumulateSaturation = (
  current: Uint8Array,
  final: Uint8Array,
  tokens: number,
  topK: number,
  position: Uint16Array,
  hist: Int32Array
): void => {
  if (topK === 6) return accumulateSaturation6(current, final, tokens, position, hist)
  for (let t = 0, base = 0; t < tokens; t++, base += topK) {
    for (let j = 0; j < topK; j++) position[final[base + j]!] = j
    for (let j = 0; j < topK; j++) {
      const d = position[current[base + j]!]! - j
      hist[j + (d & ~(d >> 31))]!++
    }
    for (let j = 0; j < topK; j++) position[final[base + j]!] = topK
  }
}

/** FLAME-MoE's top-6, unrolled: V8 does not unroll the short inner loops, and this is 3x faster. */
const accumulateSaturation6 = (
  current: Uint8Array,
  final: Uint8Array,
  tokens: number,
  position: Uint16Array,
  hist: Int32Array
): void => {
  for (let base = 0, end = tokens * 6; base < end; base += 6) {
    const f0 = final[base]!
    const f1 = final[base + 1]!
    const f2 = final[base + 2]!
    const f3 = final[base + 3]!
    const f4 = final[base + 4]!
    const f5 = final[base + 5]!
    position[f0] = 0
    position[f1] = 1
    position[f2] = 2
    position[f3] = 3
    position[f4] = 4
    position[f5] = 5
    hist[position[current[base]!]!]!++
    let d = position[current[base + 1]!]! - 1
    hist[1 + (d & ~(d >> 31))]!++
    d = position[current[base + 2]!]! - 2
    hist[2 + (d & ~(d >> 31))]!++
    d = position[current[base + 3]!]! - 3
    hist[3 + (d & ~(d >> 31))]!++
    d = position[current[base + 4]!]! - 4
    hist[4 + (d & ~(d >> 31))]!++
    d = position[current[base + 5]!]! - 5
    hist[5 + (d & ~(d >> 31))]!++
    position[f0] = 6
    position[f1] = 6
    position[f2] = 6
    position[f3] = 6
    position[f4] = 6
    position[f5] = 6
  }
}

/** Turns the histogram into the mean fraction for each k. */
export const saturationFromHistogram = (
  hist: ArrayLike<number>,
  tokens: number,
  ks: ReadonlyArray<number>
): Array<number> =>
  ks.map((k) => {
    let both = 0
    for (let v = 0; v < k; v++) both += hist[v]!
    return tokens === 0 ? 0 : both / (k * tokens)
  })

export interface SaturationInput {
  readonly scale: string
  /** Traces of every checkpoint, in step order; the last is the final checkpoint everything is compared with. */
  readonly checkpoints: ReadonlyArray<{ readonly step: number; readonly file: string }>
  readonly ks: ReadonlyArray<number>
  readonly chunkTokens?: number
}

export const routerSaturation = (input: SaturationInput): SaturationResult => {
  const final = input.checkpoints[input.checkpoints.length - 1]
  if (final === undefined) {
    throw new TraceError({ file: "(none)", reason: "router saturation needs at least one trace" })
  }
  return withTraces(input.checkpoints.map((c) => c.file), (readers) => {
    const finalReader = readers[readers.length - 1]!
    const h = finalReader.header
    for (const r of readers) checkSameShape(h, r.header)
    for (const k of input.ks) {
      if (!Number.isInteger(k) || k < 1 || k > h.topK) {
        throw new TraceError({ file: h.file, reason: `saturation k=${k} is outside 1..topK (${h.topK})` })
      }
    }
    const chunk = Math.max(1, Math.min(input.chunkTokens ?? DEFAULT_CHUNK_TOKENS, h.numTokens))
    const finalIds = new Uint8Array(chunk * h.topK)
    const ids = new Uint8Array(chunk * h.topK)
    const finalTokens = new Int32Array(chunk)
    const tokens = new Int32Array(chunk)
    const position = saturationScratch(h.topK)
    // [layer][checkpoint] histograms of max(j, p), topK + 1 bins; Int32 per chunk, summed in doubles.
    const hists = h.layerIds.map(() => readers.map(() => new Float64Array(h.topK + 1)))
    const chunkHist = new Int32Array(h.topK + 1)
    for (let start = 0; start < h.numTokens; start += chunk) {
      const n = Math.min(chunk, h.numTokens - start)
      finalReader.readTokens(start, n, finalTokens)
      const finalBytes = new Uint8Array(finalTokens.buffer, 0, n * 4)
      for (const r of readers) {
        if (r === finalReader) continue
        r.readTokens(start, n, tokens)
        if (Buffer.compare(new Uint8Array(tokens.buffer, 0, n * 4), finalBytes) === 0) continue
        const i = tokens.findIndex((t, i) => i < n && t !== finalTokens[i])
        throw new TraceMismatch({
          file: r.header.file,
          reference: h.file,
          field: "tokens",
          reason: `token ${start + i} is ${tokens[i]} vs ${finalTokens[i]} (traces of different text)`
        })
      }
      for (let layer = 0; layer < h.numLayers; layer++) {
        finalReader.readExperts(layer, start, n, finalIds)
        checkExperts(h, layer, start, finalIds.subarray(0, n * h.topK))
        readers.forEach((r, c) => {
          const current = r === finalReader ? finalIds : r.readExperts(layer, start, n, ids)
          if (r !== finalReader) checkExperts(r.header, layer, start, current.subarray(0, n * h.topK))
          chunkHist.fill(0)
          accumulateSaturation(current, finalIds, n, h.topK, position, chunkHist)
          const total = hists[layer]![c]!
          for (let v = 0; v <= h.topK; v++) total[v] = total[v]! + chunkHist[v]!
        })
      }
    }
    return {
      analysis: "routerSaturation" as const,
      scale: input.scale,
      steps: input.checkpoints.map((c) => c.step),
      finalStep: final.step,
      ks: [...input.ks],
      layers: h.layerIds.map(megatronLayerNumber),
      tokens: h.numTokens,
      saturation: hists.map((perCheckpoint) =>
        perCheckpoint.map((hist) => saturationFromHistogram(hist, h.numTokens, input.ks))
      )
    }
  })
}
