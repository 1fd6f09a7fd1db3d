/**
 * Megatron-LM's indexed dataset (core/datasets/indexed_dataset.py, "MMIDIDX" version 1):
 * PREFIX.bin is the raw token stream, PREFIX.idx is
 *
 *   magic "MMIDIDX\0\0" | u64 version = 1 | u8 dtype code | u64 sequence count S |
 *   u64 document-index count D | i32 lengths[S] | i64 byte pointers[S] | i64 document indices[D]
 *
 * all little-endian. Outputs are written under temporary names and renamed into place only when
 * complete (.bin first, then .idx, since readers open the .idx), so a failed run never leaves a
 * half-written dataset under the final names.
 */
import { Data, Effect, Schema, type Scope } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"

export const DType = Schema.Literal("uint8", "int8", "int16", "int32", "int64", "float64", "float32", "uint16")
export type DType = typeof DType.Type

const DTYPE_CODE: Record<DType, number> = {
  uint8: 1,
  int8: 2,
  int16: 3,
  int32: 4,
  int64: 5,
  float64: 6,
  float32: 7,
  uint16: 8
}
const DTYPE_SIZE: Record<DType, number> = {
  uint8: 1,
  int8: 1,
  int16: 2,
  int32: 4,
  int64: 8,
  float64: 8,
  float32: 4,
  uint16: 2
}
const CODE_DTYPE = new Map(Object.entries(DTYPE_CODE).map(([k, v]) => [v, k as DType]))

export const MAGIC = Buffer.from("MMIDIDX\x00\x00", "latin1")
const HEADER_SIZE = 9 + 8 + 1 + 8 + 8

/** Megatron's rule (DType.optimal_dtype): uint16 when the vocabulary has fewer than 65500 ids. */
export const dtypeForVocabSize = (vocabSize: number): DType => vocabSize < 65500 ? "uint16" : "int32"

export const itemSize = (dtype: DType): number => DTYPE_SIZE[dtype]

export const binPath = (prefix: string): string => `${prefix}.bin`
export const idxPath = (prefix: string): string => `${prefix}.idx`

export class IndexedDatasetError extends Data.TaggedError("IndexedDatasetError")<{
  readonly path: string
  readonly reason: string
}> {
  override get message(): string {
    return `${this.path}: ${this.reason}`
  }
}

/** int64 token files are valid Megatron but never used for tokens; the reader refuses them. */
export type TokenArray = Uint8Array | Int8Array | Int16Array | Int32Array | Float64Array | Float32Array | Uint16Array

const tokenArray = (dtype: DType, buffer: ArrayBufferLike, byteOffset: number, length: number): TokenArray => {
  switch (dtype) {
    case "uint8":
      return new Uint8Array(buffer, byteOffset, length)
    case "int8":
      return new Int8Array(buffer, byteOffset, length)
    case "int16":
      return new Int16Array(buffer, byteOffset, length)
    case "int32":
      return new Int32Array(buffer, byteOffset, length)
    case "int64":
      throw new Error("int64 token datasets are not supported")
    case "float64":
      return new Float64Array(buffer, byteOffset, length)
    case "float32":
      return new Float32Array(buffer, byteOffset, length)
    case "uint16":
      return new Uint16Array(buffer, byteOffset, length)
  }
}

/** The bytes of an .idx file for the given sequence lengths and document indices. */
export const encodeIndex = (dtype: DType, lengths: Int32Array, documentIndices: ArrayLike<number>): Buffer => {
  const s = lengths.length
  const d = documentIndices.length
  const out = Buffer.alloc(HEADER_SIZE + 4 * s + 8 * s + 8 * d)
  MAGIC.copy(out, 0)
  out.writeBigUInt64LE(1n, 9)
  out.writeUInt8(DTYPE_CODE[dtype], 17)
  out.writeBigUInt64LE(BigInt(s), 18)
  out.writeBigUInt64LE(BigInt(d), 26)
  let at = HEADER_SIZE
  Buffer.from(lengths.buffer, lengths.byteOffset, 4 * s).copy(out, at)
  at += 4 * s
  // Pointers are byte offsets into .bin: cumulative lengths times the item size.
  const size = DTYPE_SIZE[dtype]
  let pointer = 0
  for (let i = 0; i < s; i++) {
    out.writeBigInt64LE(BigInt(pointer), at + 8 * i)
    pointer += (lengths[i] as number) * size
  }
  at += 8 * s
  for (let i = 0; i < d; i++) out.writeBigInt64LE(BigInt(documentIndices[i] as number), at + 8 * i)
  return out
}

let tempCounter = 0
const tempName = (final: string): string => `${final}.tmp-${process.pid}-${Date.now().toString(36)}-${tempCounter++}`

const unlinkQuietly = (p: string): void => {
  try {
    fs.unlinkSync(p)
  } catch {
    // Already gone: nothing to clean up.
  }
}

/** Growable int32 array for the sequence lengths. */
class Int32List {
  data = new Int32Array(1024)
  length = 0
  push(v: number): void {
    if (this.length === this.data.length) {
      const grown = new Int32Array(this.data.length * 2)
      grown.set(this.data)
      this.data = grown
    }
    this.data[this.length++] = v
  }
  view(): Int32Array {
    return this.data.subarray(0, this.length)
  }
}

/**
 * Streaming writer: documents go to a temporary .bin through a token buffer; `finalize` writes the
 * .idx and renames both into place; `abort` removes the temporaries. Synchronous on purpose: the
 * caller batches documents per input chunk and the writes are large.
 */
export class IndexedDatasetWriter {
  readonly dtype: DType
  private readonly tmpBin: string
  private readonly tmpIdx: string
  private fd: number
  private readonly buffer: TokenArray & { set(a: ArrayLike<number>, offset?: number): void }
  private buffered = 0
  private readonly lengths = new Int32List()
  private readonly documentIndices: Array<number> = [0]
  private tokens = 0
  private done = false

  constructor(readonly prefix: string, dtype: DType, bufferTokens = 1 << 20) {
    if (dtype === "int64") throw new Error("int64 token datasets are not supported by the writer")
    this.dtype = dtype
    fs.mkdirSync(path.dirname(prefix), { recursive: true })
    this.tmpBin = tempName(binPath(prefix))
    this.tmpIdx = tempName(idxPath(prefix))
    this.fd = fs.openSync(this.tmpBin, "w")
    const size = DTYPE_SIZE[dtype]
    this.buffer = tokenArray(dtype, new ArrayBuffer(bufferTokens * size), 0, bufferTokens) as typeof this.buffer
  }

  /** Sequences written so far (empty documents write none). */
  get sequenceCount(): number {
    return this.lengths.length
  }

  get tokenCount(): number {
    return this.tokens
  }

  /** Appends one document made of one sequence; an empty document only adds an index entry. */
  addDocument(ids: ArrayLike<number>, start = 0, end = ids.length): void {
    const n = end - start
    if (n > 0) {
      this.writeTokens(ids, start, end)
      this.lengths.push(n)
      this.tokens += n
    }
    this.documentIndices.push(this.lengths.length)
  }

  private writeTokens(ids: ArrayLike<number>, start: number, end: number): void {
    const cap = this.buffer.length
    let at = start
    while (at < end) {
      if (this.buffered === cap) this.flush()
      const take = Math.min(end - at, cap - this.buffered)
      if (ids instanceof Uint32Array) {
        // Typed-array set converts (and for uint16 wraps) natively; ids fit the dtype by construction.
        this.buffer.set(ids.subarray(at, at + take), this.buffered)
      } else {
        const buf = this.buffer as unknown as { [i: number]: number }
        for (let i = 0; i < take; i++) buf[this.buffered + i] = ids[at + i] as number
      }
      this.buffered += take
      at += take
    }
  }

  private flush(): void {
    if (this.buffered === 0) return
    const size = DTYPE_SIZE[this.dtype]
    const bytes = new Uint8Array(this.buffer.buffer, 0, this.buffered * size)
    let off = 0
    while (off < bytes.length) off += fs.writeSync(this.fd, bytes, off)
    this.buffered = 0
  }

  /** Writes the .idx and renames .bin then .idx into place. */
  finalize(): void {
    if (this.done) throw new Error(`${this.prefix}: writer already closed`)
    this.flush()
    fs.fsyncSync(this.fd)
    fs.closeSync(this.fd)
    this.fd = -1
    fs.writeFileSync(this.tmpIdx, encodeIndex(this.dtype, this.lengths.view(), this.documentIndices))
    fs.renameSync(this.tmpBin, binPath(this.prefix))
    fs.renameSync(this.tmpIdx, idxPath(this.prefix))
    this.done = true
  }

  /** Drops the temporaries; a no-op after finalize. */
  abort(): void {
    if (this.done) return
    this.done = true
    if (this.fd >= 0) fs.closeSync(this.fd)
    this.fd = -1
    unlinkQuietly(this.tmpBin)
    unlinkQuietly(this.tmpIdx)
  }
}

/** A writer whose temporaries are removed when the scope closes without `finalize`. */
export const makeIndexedDatasetWriter = (
  prefix: string,
  dtype: DType
): Effect.Effect<IndexedDatasetWriter, IndexedDatasetError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.try({
      try: () => new IndexedDatasetWriter(prefix, dtype),
      catch: (e) => new IndexedDatasetError({ path: binPath(prefix), reason: (e as Error).message })
    }),
    (writer) => Effect.sync(() => writer.abort())
  )

export interface IndexedDatasetIndex {
  readonly dtype: DType
  readonly sequenceLengths: Int32Array
  /** Byte offsets of the sequences in .bin (int64 in the file, exact as doubles below 2^53). */
  readonly sequencePointers: Float64Array
  /** Starts with 0; entry k+1 is the number of sequences after document k. */
  readonly documentIndices: Float64Array
}

export interface IndexedDataset extends IndexedDatasetIndex {
  readonly prefix: string
  /** All tokens of .bin. */
  readonly tokens: TokenArray
  /** Tokens of sequence `i`. */
  readonly sequence: (i: number) => TokenArray
  /** Number of documents (documentIndices.length - 1). */
  readonly documentCount: number
}

/** Parses and validates the bytes of an .idx; `binBytes` (if known) is checked against it. */
export const decodeIndex = (file: string, bytes: Uint8Array, binBytes?: number): IndexedDatasetIndex => {
  const corrupt = (reason: string): never => {
    throw new IndexedDatasetError({ path: file, reason })
  }
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (buf.length < HEADER_SIZE) corrupt(`too short for an index header (${buf.length} bytes)`)
  if (!buf.subarray(0, 9).equals(MAGIC)) corrupt("bad magic (not a Megatron MMIDIDX index)")
  const version = buf.readBigUInt64LE(9)
  if (version !== 1n) corrupt(`unsupported version ${version} (expected 1)`)
  const dtype = CODE_DTYPE.get(buf.readUInt8(17)) ?? corrupt(`unknown dtype code ${buf.readUInt8(17)}`)
  const s = Number(buf.readBigUInt64LE(18))
  const d = Number(buf.readBigUInt64LE(26))
  const expected = HEADER_SIZE + 12 * s + 8 * d
  if (buf.length !== expected) {
    corrupt(`size ${buf.length} bytes does not match ${s} sequences and ${d} document indices (${expected} bytes)`)
  }
  // Uint8Array's slice copies (Buffer's would not), giving aligned, private buffers.
  const copy = (offset: number, length: number): ArrayBufferLike =>
    Uint8Array.prototype.slice.call(bytes, offset, offset + length).buffer
  const sequenceLengths = new Int32Array(copy(HEADER_SIZE, 4 * s))
  const pointers64 = new BigInt64Array(copy(HEADER_SIZE + 4 * s, 8 * s))
  const docs64 = new BigInt64Array(copy(HEADER_SIZE + 12 * s, 8 * d))
  const sequencePointers = Float64Array.from(pointers64, Number)
  const documentIndices = Float64Array.from(docs64, Number)
  const size = DTYPE_SIZE[dtype]
  let pointer = 0
  for (let i = 0; i < s; i++) {
    const len = sequenceLengths[i] as number
    if (len < 0) corrupt(`sequence ${i} has negative length ${len}`)
    if (sequencePointers[i] !== pointer) {
      corrupt(`sequence ${i} points at byte ${sequencePointers[i]}, expected ${pointer}`)
    }
    pointer += len * size
  }
  if (d < 1 || documentIndices[0] !== 0) corrupt("document indices must start with 0")
  for (let k = 1; k < d; k++) {
    const v = documentIndices[k] as number
    if (v < (documentIndices[k - 1] as number) || v > s) corrupt(`document index ${k} (${v}) is out of order or range`)
  }
  if (documentIndices[d - 1] !== s) {
    corrupt(`last document index ${documentIndices[d - 1]} is not the sequence count ${s}`)
  }
  if (binBytes !== undefined && binBytes !== pointer) {
    corrupt(`the .bin has ${binBytes} bytes but the index describes ${pointer}`)
  }
  return { dtype, sequenceLengths, sequencePointers, documentIndices }
}

const readFile = (file: string): Effect.Effect<Buffer, IndexedDatasetError> =>
  Effect.try({
    try: () => fs.readFileSync(file),
    catch: (e) => new IndexedDatasetError({ path: file, reason: `cannot read: ${(e as Error).message}` })
  })

const fileSize = (file: string): Effect.Effect<number, IndexedDatasetError> =>
  Effect.try({
    try: () => fs.statSync(file).size,
    catch: (e) => new IndexedDatasetError({ path: file, reason: `cannot stat: ${(e as Error).message}` })
  })

const decode = (
  file: string,
  bytes: Buffer,
  binBytes: number
): Effect.Effect<IndexedDatasetIndex, IndexedDatasetError> =>
  Effect.try({
    try: () => decodeIndex(file, bytes, binBytes),
    catch: (e) => e instanceof IndexedDatasetError ? e : new IndexedDatasetError({ path: file, reason: String(e) })
  })

/** Reads only the index of PREFIX (validated against the size of PREFIX.bin). */
export const readIndex = (prefix: string): Effect.Effect<IndexedDatasetIndex, IndexedDatasetError> =>
  Effect.gen(function*() {
    const binBytes = yield* fileSize(binPath(prefix))
    return yield* decode(idxPath(prefix), yield* readFile(idxPath(prefix)), binBytes)
  })

/** Reads PREFIX.idx and PREFIX.bin, validating magic, version, dtype and every size. */
export const readIndexedDataset = (prefix: string): Effect.Effect<IndexedDataset, IndexedDatasetError> =>
  Effect.gen(function*() {
    const bin = yield* readFile(binPath(prefix))
    const index = yield* decode(idxPath(prefix), yield* readFile(idxPath(prefix)), bin.length)
    if (index.dtype === "int64") {
      return yield* new IndexedDatasetError({ path: binPath(prefix), reason: "int64 token datasets are not supported" })
    }
    const size = DTYPE_SIZE[index.dtype]
    // Copy so the typed array is aligned whatever Buffer pooling did.
    const tokens = tokenArray(
      index.dtype,
      bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.length),
      0,
      bin.length / size
    )
    return {
      ...index,
      prefix,
      tokens,
      documentCount: index.documentIndices.length - 1,
      sequence: (i: number) => {
        const start = (index.sequencePointers[i] as number) / size
        return tokens.subarray(start, start + (index.sequenceLengths[i] as number)) as TokenArray
      }
    }
  })

/**
 * Concatenates datasets like Megatron's tools/merge_datasets.py: .bin files back to back, lengths
 * appended, each part's document indices shifted by the sequences before it (its leading 0 dropped).
 */
export const mergeIndexedDatasets = (
  prefixes: ReadonlyArray<string>,
  outPrefix: string
): Effect.Effect<
  { readonly sequences: number; readonly documents: number; readonly dtype: DType },
  IndexedDatasetError
> =>
  Effect.gen(function*() {
    if (prefixes.length === 0) return yield* new IndexedDatasetError({ path: outPrefix, reason: "nothing to merge" })
    const indices: Array<IndexedDatasetIndex> = []
    for (const p of prefixes) indices.push(yield* readIndex(p))
    const dtype = (indices[0] as IndexedDatasetIndex).dtype
    for (let i = 1; i < indices.length; i++) {
      if ((indices[i] as IndexedDatasetIndex).dtype !== dtype) {
        return yield* new IndexedDatasetError({
          path: idxPath(prefixes[i] as string),
          reason: `dtype ${(indices[i] as IndexedDatasetIndex).dtype} differs from ${dtype} of ${prefixes[0]}`
        })
      }
    }
    const total = indices.reduce((a, x) => a + x.sequenceLengths.length, 0)
    const lengths = new Int32Array(total)
    const documentIndices: Array<number> = [0]
    let offset = 0
    for (const x of indices) {
      lengths.set(x.sequenceLengths, offset)
      for (let k = 1; k < x.documentIndices.length; k++) documentIndices.push((x.documentIndices[k] as number) + offset)
      offset += x.sequenceLengths.length
    }
    const outBin = binPath(outPrefix)
    const outIdx = idxPath(outPrefix)
    const tmpBin = tempName(outBin)
    const tmpIdx = tempName(outIdx)
    yield* Effect.try({
      try: () => {
        fs.mkdirSync(path.dirname(outPrefix), { recursive: true })
        const fd = fs.openSync(tmpBin, "w")
        try {
          const chunk = Buffer.allocUnsafe(1 << 22)
          for (const p of prefixes) {
            const src = fs.openSync(binPath(p), "r")
            try {
              for (let n = fs.readSync(src, chunk); n > 0; n = fs.readSync(src, chunk)) {
                let off = 0
                while (off < n) off += fs.writeSync(fd, chunk, off, n - off)
              }
            } finally {
              fs.closeSync(src)
            }
          }
          fs.fsyncSync(fd)
        } finally {
          fs.closeSync(fd)
        }
        fs.writeFileSync(tmpIdx, encodeIndex(dtype, lengths, documentIndices))
        fs.renameSync(tmpBin, outBin)
        fs.renameSync(tmpIdx, outIdx)
      },
      catch: (e) => {
        unlinkQuietly(tmpBin)
        unlinkQuietly(tmpIdx)
        return new IndexedDatasetError({ path: outPrefix, reason: (e as Error).message })
      }
    })
    return { sequences: total, documents: documentIndices.length - 1, dtype }
  })
