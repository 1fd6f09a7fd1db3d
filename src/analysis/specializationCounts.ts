/**
 * The full counts behind expert specialization, as a binary file (little-endian, packed):
 *
 *   "FLMSPEC\0" | u32 version = 1 | u32 numLayers | u32 numExperts | u32 vocabSize | u32 numTokenIds U |
 *   u32 layerIds[numLayers] | u32 tokenIds[U] (ascending: the ids that occur in the trace) |
 *   u32 occurrences[U] | per layer: u32 routed[U][numExperts] (token-major)
 *
 * layerIds are the trace's 0-based layer indices (as trace.bin stores them, not Megatron's 1-based layer
 * numbers that the JSON summary uses: number = index + 1, layerNumber.ts).
 * specialization(layer, expert, tokenIds[u]) = routed[layer][u][expert] / occurrences[u]. Only tokens that
 * occur get a row, so a trace of a few thousand distinct tokens stays small whatever the vocabulary.
 * Written to a temporary name and renamed into place when complete.
 */
import * as fs from "node:fs"
import { TraceError } from "./errors.ts"

export const COUNTS_MAGIC = "FLMSPEC\0"
const HEADER_BYTES = 8 + 5 * 4

export interface SpecializationCounts {
  readonly layerIds: ReadonlyArray<number>
  readonly numExperts: number
  readonly vocabSize: number
  readonly tokenIds: Uint32Array
  /** Indexed by token id (vocabSize entries) when writing; by position in tokenIds when read back. */
  readonly occurrences: Float64Array
  /** Per layer, U x numExperts. */
  readonly routed: ReadonlyArray<Uint32Array>
}

const bytesOf = (a: Uint32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength)

/** Streams the file layer by layer, so the whole table never has to sit in memory at once. */
export class SpecializationCountsWriter {
  private readonly fd: number
  private readonly tmp: string
  private layersWritten = 0

  constructor(
    private readonly file: string,
    private readonly layerIds: ReadonlyArray<number>,
    private readonly numExperts: number,
    vocabSize: number,
    private readonly tokenIds: Uint32Array,
    occurrencesByToken: ArrayLike<number>
  ) {
    this.tmp = `${file}.tmp-${process.pid}`
    this.fd = fs.openSync(this.tmp, "w")
    const header = Buffer.alloc(HEADER_BYTES)
    header.write(COUNTS_MAGIC, 0, "latin1")
    header.writeUInt32LE(1, 8)
    header.writeUInt32LE(layerIds.length, 12)
    header.writeUInt32LE(numExperts, 16)
    header.writeUInt32LE(vocabSize, 20)
    header.writeUInt32LE(tokenIds.length, 24)
    fs.writeSync(this.fd, header)
    fs.writeSync(this.fd, bytesOf(Uint32Array.from(layerIds)))
    fs.writeSync(this.fd, bytesOf(tokenIds))
    fs.writeSync(this.fd, bytesOf(Uint32Array.from(tokenIds, (t) => occurrencesByToken[t]!)))
  }

  /** One layer's counts, from the dense vocabSize x numExperts table: only the rows of present tokens are kept. */
  appendLayer(routedByToken: Uint32Array): void {
    const E = this.numExperts
    const rows = new Uint32Array(this.tokenIds.length * E)
    this.tokenIds.forEach((token, u) => rows.set(routedByToken.subarray(token * E, (token + 1) * E), u * E))
    fs.writeSync(this.fd, bytesOf(rows))
    this.layersWritten++
  }

  finish(): void {
    if (this.layersWritten !== this.layerIds.length) {
      throw new Error(`specialization counts: ${this.layersWritten} of ${this.layerIds.length} layers written`)
    }
    fs.fsyncSync(this.fd)
    fs.closeSync(this.fd)
    fs.renameSync(this.tmp, this.file)
  }

  abort(): void {
    try {
      fs.closeSync(this.fd)
    } catch {
      // Already closed.
    }
    fs.rmSync(this.tmp, { force: true })
  }
}

export const readSpecializationCounts = (file: string): SpecializationCounts => {
  const data = fs.readFileSync(file)
  const fail = (reason: string) => new TraceError({ file, reason })
  if (data.length < HEADER_BYTES || data.toString("latin1", 0, 8) !== COUNTS_MAGIC) {
    throw fail("not a specialization counts file (bad magic)")
  }
  if (data.readUInt32LE(8) !== 1) throw fail(`unsupported version ${data.readUInt32LE(8)}`)
  const numLayers = data.readUInt32LE(12)
  const numExperts = data.readUInt32LE(16)
  const vocabSize = data.readUInt32LE(20)
  const U = data.readUInt32LE(24)
  const expected = HEADER_BYTES + 4 * numLayers + 8 * U + 4 * numLayers * U * numExperts
  if (data.length !== expected) throw fail(`${data.length} bytes, the header implies ${expected}`)
  // Copy into an aligned buffer so the sections can be viewed as u32 arrays.
  const words = new Uint32Array((data.length - HEADER_BYTES) / 4)
  new Uint8Array(words.buffer).set(data.subarray(HEADER_BYTES))
  let at = 0
  const take = (n: number) => words.subarray(at, at += n)
  const layerIds = Array.from(take(numLayers))
  const tokenIds = take(U)
  const occurrences = Float64Array.from(take(U))
  const routed = layerIds.map(() => take(U * numExperts))
  return { layerIds, numExperts, vocabSize, tokenIds, occurrences, routed }
}
