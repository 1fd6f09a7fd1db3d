/**
 * Reader of the worker's router traces (`flame-worker trace`, layout in kernels/README.md):
 *
 *   "FLMTRACE" | u32 version = 1 | u32 numLayers | u32 topK | u32 numExperts | u32 seqLength |
 *   u32 numSamples | u64 numTokens | u32 layerIds[numLayers] | u64 sampleIndices[numSamples] |
 *   i32 tokens[numTokens] | per layer: u8 experts[numTokens * topK], f32 probs[numTokens * topK]
 *
 * little-endian, packed; slots of a token are in descending router probability. layerIds are the worker's
 * 0-based layer indices; anything that names a layer uses Megatron's 1-based number (layerNumber.ts). A trace of hundreds
 * of millions of tokens is several GB per layer, so nothing here reads a whole section: callers pull
 * fixed-size chunks of tokens into typed arrays they own and reuse.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import { TraceError, TraceMismatch } from "./errors.ts"
import { megatronLayerNumber } from "./layerNumber.ts"

export const TRACE_MAGIC = "FLMTRACE"
export const TRACE_VERSION = 1
const FIXED_HEADER_BYTES = 8 + 6 * 4 + 8

export interface TraceHeader {
  readonly file: string
  readonly numLayers: number
  readonly topK: number
  readonly numExperts: number
  readonly seqLength: number
  readonly numSamples: number
  readonly numTokens: number
  /** 0-based model layer index of each traced (MoE) layer, as stored; its name is megatronLayerNumber(index). */
  readonly layerIds: ReadonlyArray<number>
  /** Indices of the traced samples in the worker's test split. */
  readonly sampleIndices: ReadonlyArray<number>
  readonly tokensOffset: number
  readonly fileSize: number
}

/** Byte offset of layer `layer`'s expert ids; its probabilities follow them. */
export const expertsOffset = (h: TraceHeader, layer: number): number =>
  h.tokensOffset + 4 * h.numTokens + layer * 5 * h.numTokens * h.topK

export const probsOffset = (h: TraceHeader, layer: number): number => expertsOffset(h, layer) + h.numTokens * h.topK

const readAt = (fd: number, file: string, into: Uint8Array, position: number): void => {
  let done = 0
  while (done < into.length) {
    const n = fs.readSync(fd, into, done, into.length - done, position + done)
    if (n === 0) throw new TraceError({ file, reason: `unexpected end of file at byte ${position + done}` })
    done += n
  }
}

/** Parses and validates the header; every size is checked against the file's length before any data is read. */
export const readTraceHeader = (file: string): TraceHeader => {
  if (os.endianness() !== "LE") throw new TraceError({ file, reason: "traces are little-endian; this host is not" })
  let fd: number
  try {
    fd = fs.openSync(file, "r")
  } catch (e) {
    throw new TraceError({ file, reason: `cannot open: ${(e as Error).message}` })
  }
  try {
    const fileSize = fs.fstatSync(fd).size
    if (fileSize < FIXED_HEADER_BYTES) {
      throw new TraceError({ file, reason: `${fileSize} bytes is shorter than the ${FIXED_HEADER_BYTES}-byte header` })
    }
    const fixed = Buffer.alloc(FIXED_HEADER_BYTES)
    readAt(fd, file, fixed, 0)
    const magic = fixed.toString("latin1", 0, 8)
    if (magic !== TRACE_MAGIC) {
      throw new TraceError({ file, reason: `bad magic ${JSON.stringify(magic)} (expected ${TRACE_MAGIC})` })
    }
    const version = fixed.readUInt32LE(8)
    if (version !== TRACE_VERSION) {
      throw new TraceError({ file, reason: `unsupported version ${version} (this reader knows ${TRACE_VERSION})` })
    }
    const numLayers = fixed.readUInt32LE(12)
    const topK = fixed.readUInt32LE(16)
    const numExperts = fixed.readUInt32LE(20)
    const seqLength = fixed.readUInt32LE(24)
    const numSamples = fixed.readUInt32LE(28)
    const numTokens = Number(fixed.readBigUInt64LE(32))
    const bad = (field: string, reason: string) => new TraceError({ file, reason: `header field ${field}: ${reason}` })
    if (numLayers === 0) throw bad("numLayers", "0 (a trace has at least one MoE layer)")
    if (numExperts === 0 || numExperts > 256) throw bad("numExperts", `${numExperts} (expert ids are u8: 1..256)`)
    if (topK === 0 || topK > numExperts) throw bad("topK", `${topK} with ${numExperts} experts`)
    if (numTokens !== numSamples * seqLength) {
      throw bad("numTokens", `${numTokens} != numSamples ${numSamples} x seqLength ${seqLength}`)
    }
    const tokensOffset = FIXED_HEADER_BYTES + 4 * numLayers + 8 * numSamples
    const expected = tokensOffset + 4 * numTokens + numLayers * 5 * numTokens * topK
    if (fileSize !== expected) {
      throw new TraceError({
        file,
        reason: `file is ${fileSize} bytes; the header (${numLayers} layers, ${numTokens} tokens, top-${topK}) ` +
          `implies ${expected}${fileSize < expected ? " (truncated?)" : ""}`
      })
    }
    const lists = Buffer.alloc(4 * numLayers + 8 * numSamples)
    readAt(fd, file, lists, FIXED_HEADER_BYTES)
    const layerIds = Array.from({ length: numLayers }, (_, i) => lists.readUInt32LE(4 * i))
    const sampleIndices = Array.from(
      { length: numSamples },
      (_, i) => Number(lists.readBigUInt64LE(4 * numLayers + 8 * i))
    )
    return {
      file,
      numLayers,
      topK,
      numExperts,
      seqLength,
      numSamples,
      numTokens,
      layerIds,
      sampleIndices,
      tokensOffset,
      fileSize
    }
  } finally {
    fs.closeSync(fd)
  }
}

/** An open trace: chunks of its sections read into caller-owned typed arrays. */
export class TraceReader {
  readonly header: TraceHeader
  private readonly fd: number

  constructor(file: string) {
    this.header = readTraceHeader(file)
    this.fd = fs.openSync(file, "r")
  }

  /** Token ids [start, start + count) into `into` (length >= count). */
  readTokens(start: number, count: number, into: Int32Array): Int32Array {
    const bytes = new Uint8Array(into.buffer, into.byteOffset, count * 4)
    readAt(this.fd, this.header.file, bytes, this.header.tokensOffset + 4 * start)
    return into
  }

  /** Expert ids of tokens [start, start + count) of one layer: count * topK bytes, token-major. */
  readExperts(layer: number, start: number, count: number, into: Uint8Array): Uint8Array {
    const k = this.header.topK
    const view = into.subarray(0, count * k)
    readAt(this.fd, this.header.file, view, expertsOffset(this.header, layer) + start * k)
    return view
  }

  /** Router probabilities of tokens [start, start + count) of one layer. */
  readProbs(layer: number, start: number, count: number, into: Float32Array): Float32Array {
    const k = this.header.topK
    const bytes = new Uint8Array(into.buffer, into.byteOffset, count * k * 4)
    readAt(this.fd, this.header.file, bytes, probsOffset(this.header, layer) + 4 * start * k)
    return into
  }

  close(): void {
    fs.closeSync(this.fd)
  }
}

/** Opens every file, runs `use`, and closes them all whatever happens. */
export const withTraces = <A>(files: ReadonlyArray<string>, use: (readers: ReadonlyArray<TraceReader>) => A): A => {
  const readers: Array<TraceReader> = []
  try {
    for (const file of files) readers.push(new TraceReader(file))
    return use(readers)
  } finally {
    for (const r of readers) r.close()
  }
}

/**
 * Traces compared across checkpoints must route the same tokens through the same layers: same shape, same
 * samples. (Token ids themselves are compared chunk by chunk by the analyses that read them.)
 */
export const checkSameShape = (reference: TraceHeader, other: TraceHeader): void => {
  const fields = ["numLayers", "topK", "numExperts", "seqLength", "numSamples"] as const
  for (const field of fields) {
    if (reference[field] !== other[field]) {
      throw new TraceMismatch({
        file: other.file,
        reference: reference.file,
        field,
        reason: `${other[field]} vs ${reference[field]}`
      })
    }
  }
  const differs = (a: ReadonlyArray<number>, b: ReadonlyArray<number>) => a.findIndex((v, i) => v !== b[i])
  const layer = differs(other.layerIds, reference.layerIds)
  if (layer >= 0) {
    throw new TraceMismatch({
      file: other.file,
      reference: reference.file,
      field: "layerIds",
      reason: `entry ${layer}: Megatron layer ${megatronLayerNumber(other.layerIds[layer]!)} vs ` +
        `${megatronLayerNumber(reference.layerIds[layer]!)} (stored 0-based: ${other.layerIds[layer]} vs ` +
        `${reference.layerIds[layer]})`
    })
  }
  const sample = differs(other.sampleIndices, reference.sampleIndices)
  if (sample >= 0) {
    throw new TraceMismatch({
      file: other.file,
      reference: reference.file,
      field: "sampleIndices",
      reason: `entry ${sample}: ${other.sampleIndices[sample]} vs ${reference.sampleIndices[sample]} ` +
        "(traces of different samples cannot be compared)"
    })
  }
}

/** Index of the first slot whose expert id is >= numExperts, or -1. Fast path for power-of-two expert counts. */
export const firstBadExpert = (ids: Uint8Array, numExperts: number): number => {
  if (numExperts >= 256) return -1
  if ((numExperts & (numExperts - 1)) === 0 && ids.byteOffset % 4 === 0) {
    // An id is out of range iff it has a bit at or above log2(numExperts): OR four ids at a time.
    const mask = 255 & ~(numExperts - 1)
    const words = new Uint32Array(ids.buffer, ids.byteOffset, ids.length >>> 2)
    let any = 0
    for (let i = 0; i < words.length; i++) any |= words[i]!
    for (let i = words.length * 4; i < ids.length; i++) any |= ids[i]!
    if (((any | (any >>> 8) | (any >>> 16) | (any >>> 24)) & mask) === 0) return -1
  }
  for (let i = 0; i < ids.length; i++) if (ids[i]! >= numExperts) return i
  return -1
}

/**
 * Throws naming the file, layer (Megatron's number) and token when a chunk holds an expert id outside the
 * router. `layer` is the position in the trace's layer list.
 */
export const checkExperts = (h: TraceHeader, layer: number, start: number, ids: Uint8Array): void => {
  const bad = firstBadExpert(ids, h.numExperts)
  if (bad >= 0) {
    const token = start + Math.floor(bad / h.topK)
    throw new TraceError({
      file: h.file,
      reason:
        `layer ${megatronLayerNumber(h.layerIds[layer]!)} token ${token} slot ${bad % h.topK}: expert id ${
          ids[bad]
        } >= numExperts ` +
        `${h.numExperts} (byte ${expertsOffset(h, layer) + start * h.topK + bad})`
    })
  }
}

/** Tokens per chunk: ~6 MB of expert ids at top-6, small enough to stay in cache-friendly, reusable buffers. */
export const DEFAULT_CHUNK_TOKENS = 1 << 20
