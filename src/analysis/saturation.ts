/**
 * Router saturation: how much of a token's routing at a checkpoint already agrees with the final one.
 * For k in `ks`, the fraction of the token's top-k experts at checkpoint t that are also among its top-k
 * at the final checkpoint, averaged over tokens, per layer.
 */
import { TraceError, TraceMismatch } from "./errors.ts"
import type { SaturationResult } from "./schema.ts"
import { checkExperts, checkSameShape, DEFAULT_CHUNK_TOKENS, withTraces } from "./TraceFile.ts"

const NONE = 0xffff

/** Scratch for `accumulateSaturation`: expert -> slot at the final checkpoint, NONE when not routed there. */
export const saturationScratch = (): Uint16Array => new Uint16Array(256).fill(NONE)

/**
 * Adds one chunk of tokens. Slot j of a token at the checkpoint holds an expert that sits in slot p of the
 * same token at the final checkpoint (or nowhere). That expert is in both top-k sets exactly when
 * max(j, p) < k, so one histogram of max(j, p) gives the intersection sizes for every k at once:
 * sum over tokens of |top_k(t) ∩ top_k(final)| = hist[0] + ... + hist[k - 1].
 * `position` must be all NONE on entry; it is left so.
 */
export const accumulateSaturation = (
  current: Uint8Array,
  final: Uint8Array,
  tokens: number,
  topK: number,
  position: Uint16Array,
  hist: Float64Array
): void => {
  for (let t = 0, base = 0; t < tokens; t++, base += topK) {
    for (let j = 0; j < topK; j++) position[final[base + j]!] = j
    for (let j = 0; j < topK; j++) {
      const p = position[current[base + j]!]!
      const v = p > j ? p : j
      if (v < topK) hist[v]!++
    }
    for (let j = 0; j < topK; j++) position[final[base + j]!] = NONE
  }
}

/** Turns the histogram into the mean fraction for each k. */
export const saturationFromHistogram = (
  hist: Float64Array,
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
    const position = saturationScratch()
    // [layer][checkpoint] histograms
    const hists = h.layerIds.map(() => readers.map(() => new Float64Array(h.topK)))
    for (let start = 0; start < h.numTokens; start += chunk) {
      const n = Math.min(chunk, h.numTokens - start)
      finalReader.readTokens(start, n, finalTokens)
      for (const r of readers) {
        if (r === finalReader) continue
        r.readTokens(start, n, tokens)
        for (let i = 0; i < n; i++) {
          if (tokens[i] !== finalTokens[i]) {
            throw new TraceMismatch({
              file: r.header.file,
              reference: h.file,
              field: "tokens",
              reason: `token ${start + i} is ${tokens[i]} vs ${finalTokens[i]} (traces of different text)`
            })
          }
        }
      }
      for (let layer = 0; layer < h.numLayers; layer++) {
        finalReader.readExperts(layer, start, n, finalIds)
        checkExperts(h, layer, start, finalIds.subarray(0, n * h.topK))
        readers.forEach((r, c) => {
          const current = r === finalReader ? finalIds : r.readExperts(layer, start, n, ids)
          if (r !== finalReader) checkExperts(r.header, layer, start, current.subarray(0, n * h.topK))
          accumulateSaturation(current, finalIds, n, h.topK, position, hists[layer]![c]!)
        })
      }
    }
    return {
      analysis: "routerSaturation" as const,
      scale: input.scale,
      steps: input.checkpoints.map((c) => c.step),
      finalStep: final.step,
      ks: [...input.ks],
      layers: [...h.layerIds],
      tokens: h.numTokens,
      saturation: hists.map((perCheckpoint) =>
        perCheckpoint.map((hist) => saturationFromHistogram(hist, h.numTokens, input.ks))
      )
    }
  })
}
