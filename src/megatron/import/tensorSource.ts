/**
 * A Megatron checkpoint seen as a set of global tensors, each made of chunks at offsets: exactly
 * what a torch_dist checkpoint stores, and what a legacy checkpoint's per-rank tensors become once
 * each local tensor is placed at its global offset (an expert-parallel rank's experts along the
 * expert axis). Regions of a global tensor are assembled chunk by chunk, as byte runs, so memory holds
 * the region being built and one chunk.
 */
import { numelOf, rowMajorStrides } from "./torchArchive.ts"
import type { TorchDtype } from "./torchPickle.ts"
import { dtypeBytes } from "./torchPickle.ts"

export interface SourceChunk {
  readonly offsets: ReadonlyArray<number>
  readonly sizes: ReadonlyArray<number>
  /** Where the chunk's bytes are, for error messages. */
  readonly file: string
  /**
   * Rows [first, first + rows) of the chunk (slices along its first dimension), row-major, in the
   * tensor's dtype; into `scratch`, which is large enough.
   */
  readonly read: (scratch: Uint8Array, first: number, rows: number) => Promise<Uint8Array>
}

export interface SourceTensor {
  readonly key: string
  readonly dtype: TorchDtype
  readonly size: ReadonlyArray<number>
  readonly chunks: ReadonlyArray<SourceChunk>
}

export class AssembleError extends Error {
  constructor(readonly file: string | undefined, message: string) {
    super(message)
  }
}

/** dtypes a model's weights are stored in; anything else is not a weight. */
const floatDtypes = new Set<TorchDtype>(["BF16", "F16", "F32"])

const f16ToF32 = (h: number): number => {
  const s = h & 0x8000 ? -1 : 1
  const e = (h >> 10) & 0x1f
  const m = h & 0x3ff
  if (e === 0) return s * m * 2 ** -24
  if (e === 31) return m === 0 ? s * Infinity : NaN
  return s * (1 + m / 1024) * 2 ** (e - 15)
}

/** What the worker reads: bf16 and float32 as stored (widening bf16 is exact), float16 widened to float32. */
export type WorkerDtype = "BF16" | "F32"
export const workerDtype = (dtype: TorchDtype): WorkerDtype => (dtype === "BF16" ? "BF16" : "F32")

/** Copies `count` elements of `raw` from element `from` into `out` at element `to`, as workerDtype(dtype). */
const copyRun = (dtype: TorchDtype, raw: Uint8Array, from: number, out: Uint8Array, to: number, count: number) => {
  if (dtype === "BF16" || dtype === "F32") {
    const item = dtypeBytes[dtype]
    out.set(raw.subarray(from * item, (from + count) * item), to * item)
  } else {
    const src = new Uint16Array(raw.buffer, raw.byteOffset + from * 2, count)
    const dst = new Float32Array(out.buffer, out.byteOffset + to * 4, count)
    for (let i = 0; i < count; i++) dst[i] = f16ToF32(src[i]!)
  }
}

/** One chunk buffer, reused from chunk to chunk (chunks are read one at a time). */
let scratch = new Uint8Array(0)

export interface Region {
  readonly dtype: WorkerDtype
  /** Row-major elements of the region. */
  readonly bytes: Uint8Array
}

/**
 * The region [start, start + extent) of a global tensor, row-major, in workerDtype. Every element must be
 * covered by exactly the chunks the checkpoint has; an uncovered element is an error (a missing
 * rank's file, or a tensor that only some layers have).
 */
export const assembleRegion = async (
  tensor: SourceTensor,
  start: ReadonlyArray<number>,
  extent: ReadonlyArray<number>,
  /** Where to build the region (when large enough), so a caller can reuse its buffers. */
  into?: Uint8Array
): Promise<Region> => {
  const n = tensor.size.length
  if (start.length !== n || extent.length !== n) {
    throw new AssembleError(undefined, `has ${n} dimensions [${tensor.size.join(", ")}], expected ${start.length}`)
  }
  for (let d = 0; d < n; d++) {
    if (start[d]! + extent[d]! > tensor.size[d]!) {
      throw new AssembleError(undefined, `has shape [${tensor.size.join(", ")}], too small for the model`)
    }
  }
  if (!floatDtypes.has(tensor.dtype)) throw new AssembleError(undefined, `has dtype ${tensor.dtype}, not a float type`)
  const total = numelOf(extent)
  const dtype = workerDtype(tensor.dtype)
  const bytes = total * dtypeBytes[dtype]
  const out = into !== undefined && into.byteLength >= bytes ? into.subarray(0, bytes) : new Uint8Array(bytes)
  const outStrides = rowMajorStrides(extent)
  let covered = 0
  for (const chunk of tensor.chunks) {
    // The intersection of the chunk with the region, per dimension.
    const lo: Array<number> = []
    const hi: Array<number> = []
    let empty = false
    for (let d = 0; d < n; d++) {
      const a = Math.max(start[d]!, chunk.offsets[d]!)
      const b = Math.min(start[d]! + extent[d]!, chunk.offsets[d]! + chunk.sizes[d]!)
      if (a >= b) empty = true
      lo.push(a)
      hi.push(b)
    }
    if (empty) continue
    // Only the chunk's rows (along dimension 0) that the region needs are read.
    const chunkNumel = numelOf(chunk.sizes)
    const rowElems = chunkNumel / chunk.sizes[0]!
    const firstRow = lo[0]! - chunk.offsets[0]!
    const rows = hi[0]! - lo[0]!
    const wanted = rows * rowElems * dtypeBytes[tensor.dtype]
    if (scratch.byteLength < wanted) scratch = new Uint8Array(wanted)
    const raw = await chunk.read(scratch, firstRow, rows)
    if (raw.byteLength !== wanted) {
      throw new AssembleError(
        chunk.file,
        `chunk at [${chunk.offsets.join(", ")}] gave ${raw.byteLength} bytes for ${rows} of its rows, ${wanted} needed`
      )
    }
    const chunkStrides = rowMajorStrides(chunk.sizes)
    // Trailing dimensions the intersection spans whole, in both the chunk and the region, are one
    // contiguous run on both sides: copy them at once (a whole expert, a whole layer).
    let k = n - 1
    while (
      k > 0 && lo[k] === chunk.offsets[k] && hi[k] === chunk.offsets[k]! + chunk.sizes[k]! && lo[k] === start[k] &&
      hi[k] === start[k]! + extent[k]!
    ) k--
    let run = 1
    for (let d = k; d < n; d++) run *= hi[d]! - lo[d]!
    // Walk every index of the intersection before dimension k; copy a run from there on.
    const idx = lo.slice(0, k)
    for (;;) {
      let src = 0
      let dst = 0
      for (let d = 0; d < n; d++) {
        const at = d < k ? idx[d]! : lo[d]!
        src += (at - chunk.offsets[d]! - (d === 0 ? firstRow : 0)) * chunkStrides[d]!
        dst += (at - start[d]!) * outStrides[d]!
      }
      copyRun(tensor.dtype, raw, src, out, dst, run)
      covered += run
      let d = k - 1
      while (d >= 0) {
        idx[d]!++
        if (idx[d]! < hi[d]!) break
        idx[d] = lo[d]!
        d--
      }
      if (d < 0) break
    }
  }
  if (covered !== total) {
    throw new AssembleError(
      undefined,
      covered < total ?
        `its chunks cover ${covered} of the ${total} elements needed (a rank's file missing from the checkpoint?)` :
        `its chunks overlap (${covered} elements written for ${total})`
    )
  }
  return { dtype, bytes: out }
}
