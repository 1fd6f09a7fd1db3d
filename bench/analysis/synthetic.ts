/**
 * Synthetic router traces with the structure real ones have: Zipf-distributed token ids, experts that
 * prefer certain tokens (so specialization and co-activation are not uniform), a skewed expert load, and
 * earlier checkpoints that agree with the final one only partly (so saturation grows over training).
 * Deterministic for a given seed.
 */
import type { TraceShape } from "../../src/analysis/traceWriter.ts"
import { writeTrace } from "../../src/analysis/traceWriter.ts"

/** splitmix64 in 32-bit halves is overkill here: a mulberry32 stream is enough for synthetic data. */
export const random = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export interface SyntheticOptions {
  readonly numTokens: number
  readonly vocabSize: number
  readonly numExperts: number
  readonly topK: number
  readonly numLayers: number
  readonly seqLength: number
  readonly seed: number
}

/** Zipf(1) token ids over the vocabulary, by inverse CDF on a precomputed table. */
export const syntheticTokens = (o: SyntheticOptions, start: number, count: number): Int32Array => {
  const rand = random(o.seed * 7919 + start)
  const cdf = new Float64Array(o.vocabSize)
  let sum = 0
  for (let v = 0; v < o.vocabSize; v++) cdf[v] = sum += 1 / (v + 1)
  const out = new Int32Array(count)
  for (let i = 0; i < count; i++) {
    const x = rand() * sum
    let lo = 0
    let hi = o.vocabSize - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (cdf[mid]! < x) lo = mid + 1
      else hi = mid
    }
    out[i] = lo
  }
  return out
}

/**
 * Final-checkpoint routing of one layer: each token draws its k distinct experts near an expert its token
 * id prefers (60%) or from a skewed global distribution (40%).
 */
export const syntheticRouting = (o: SyntheticOptions, layer: number, tokens: Int32Array, salt: number): Uint8Array => {
  const rand = random(o.seed * 104729 + layer * 7 + salt)
  const E = o.numExperts
  const ids = new Uint8Array(tokens.length * o.topK)
  const used = new Uint8Array(E)
  for (let t = 0; t < tokens.length; t++) {
    const preferred = (Math.imul(tokens[t]! + layer * 31, 2654435761) >>> 0) % E
    for (let j = 0; j < o.topK; j++) {
      let e: number
      do {
        e = rand() < 0.6
          ? (preferred + Math.floor(rand() * 3 * (j + 1))) % E
          : Math.floor(E * rand() * rand())
      } while (used[e] === 1)
      used[e] = 1
      ids[t * o.topK + j] = e
    }
    for (let j = 0; j < o.topK; j++) used[ids[t * o.topK + j]!] = 0
  }
  return ids
}

/** An earlier checkpoint's routing: each slot of the final routing is replaced, with probability `change`. */
export const perturbRouting = (o: SyntheticOptions, final: Uint8Array, change: number, salt: number): Uint8Array => {
  const rand = random(o.seed * 15485863 + salt)
  const E = o.numExperts
  const ids = final.slice()
  const used = new Uint8Array(E)
  for (let base = 0; base < ids.length; base += o.topK) {
    for (let j = 0; j < o.topK; j++) used[ids[base + j]!] = 1
    for (let j = 0; j < o.topK; j++) {
      if (rand() >= change) continue
      let e: number
      do e = Math.floor(rand() * E)
      while (used[e] === 1)
      used[ids[base + j]!] = 0
      used[e] = 1
      ids[base + j] = e
    }
    // Some slots also trade places, as probabilities reorder during training.
    if (rand() < change && o.topK > 1) {
      const j = Math.floor(rand() * (o.topK - 1))
      const tmp = ids[base + j]!
      ids[base + j] = ids[base + j + 1]!
      ids[base + j + 1] = tmp
    }
    for (let j = 0; j < o.topK; j++) used[ids[base + j]!] = 0
  }
  return ids
}

export const shapeOf = (o: SyntheticOptions): TraceShape => ({
  layerIds: Array.from({ length: o.numLayers }, (_, l) => l + 1),
  topK: o.topK,
  numExperts: o.numExperts,
  seqLength: o.seqLength,
  sampleIndices: Array.from({ length: o.numTokens / o.seqLength }, (_, i) => i)
})

/**
 * Writes a final trace and earlier ones (one per `changes` entry, each that fraction of slots replaced),
 * `chunk` tokens at a time so that large traces stream.
 */
export const writeSyntheticTraces = (
  o: SyntheticOptions,
  files: {
    readonly final: string
    readonly earlier: ReadonlyArray<{ readonly file: string; readonly change: number }>
  },
  chunk = 1 << 20
): void => {
  if (o.numTokens % o.seqLength !== 0) throw new Error("numTokens must be a multiple of seqLength")
  const starts = Array.from({ length: Math.ceil(o.numTokens / chunk) }, (_, i) => i * chunk)
  const tokenChunk = (start: number) => syntheticTokens(o, start, Math.min(chunk, o.numTokens - start))
  const tokens = function*() {
    for (const s of starts) yield tokenChunk(s)
  }
  const finalLayer = (layer: number, start: number) => syntheticRouting(o, layer, tokenChunk(start), start)
  writeTrace(files.final, shapeOf(o), tokens(), function*(layer) {
    for (const s of starts) yield { ids: finalLayer(layer, s) }
  })
  files.earlier.forEach(({ change, file }, c) =>
    writeTrace(file, shapeOf(o), tokens(), function*(layer) {
      for (const s of starts) yield { ids: perturbRouting(o, finalLayer(layer, s), change, c * 1000003 + s + layer) }
    })
  )
}
