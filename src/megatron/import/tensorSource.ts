/**
 * A Megatron checkpoint seen as a set of global tensors, each made of chunks at offsets: exactly
 * what a torch_dist checkpoint stores, and what a legacy checkpoint's per-rank tensors become once
 * each local tensor is placed at its global offset (an expert-parallel rank's experts along the
 * expert axis). Regions of a global tensor are assembled chunk by chunk, converted to float32 on the
 * way, so memory holds the region being built and one chunk.
 */
import type { TorchDtype } from "./torchPickle.ts"
import { dtypeBytes } from "./torchPickle.ts"

export interface SourceChunk {
  readonly offsets: ReadonlyArray<number>
  readonly sizes: ReadonlyArray<number>
  /** Where the chunk's bytes are, for error messages. */
  readonly file: string
  /** The chunk's elements in row-major order, in the tensor's dtype. */
  readonly read: () => Promise<Uint8Array>
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

/** Converts `count` elements of `raw` starting at element `from` into `out` at `to` (float32 bits). */
const convert = (dtype: TorchDtype, raw: Uint8Array, from: number, out: Float32Array, to: number, count: number) => {
  if (dtype === "F32") {
    out.set(new Float32Array(raw.buffer, raw.byteOffset + from * 4, count), to)
  } else if (dtype === "BF16") {
    // bfloat16 is the upper half of a float32: widening is exact.
    const src = new Uint16Array(raw.buffer, raw.byteOffset + from * 2, count)
    const dst = new Uint32Array(out.buffer, out.byteOffset + to * 4, count)
    for (let i = 0; i < count; i++) dst[i] = src[i]! << 16
  } else {
    const src = new Uint16Array(raw.buffer, raw.byteOffset + from * 2, count)
    for (let i = 0; i < count; i++) out[to + i] = f16ToF32(src[i]!)
  }
}

const rowMajorStrides = (size: ReadonlyArray<number>): Array<number> => {
  const s = new Array<number>(size.length)
  let acc = 1
  for (let d = size.length - 1; d >= 0; d--) {
    s[d] = acc
    acc *= size[d]!
  }
  return s
}

/**
 * The region [start, start + extent) of a global tensor as float32, row-major. Every element must be
 * covered by exactly the chunks the checkpoint has; an uncovered element is an error (a missing
 * rank's file, or a tensor that only some layers have).
 */
export const assembleRegion = async (
  tensor: SourceTensor,
  start: ReadonlyArray<number>,
  extent: ReadonlyArray<number>
): Promise<Float32Array> => {
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
  const total = extent.reduce((a, b) => a * b, 1)
  const out = new Float32Array(total)
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
    const raw = await chunk.read()
    const chunkNumel = chunk.sizes.reduce((a, b) => a * b, 1)
    if (raw.byteLength !== chunkNumel * dtypeBytes[tensor.dtype]) {
      throw new AssembleError(
        chunk.file,
        `chunk at [${chunk.offsets.join(", ")}] holds ${raw.byteLength} bytes, its ${chunkNumel} elements need ${
          chunkNumel * dtypeBytes[tensor.dtype]
        }`
      )
    }
    const chunkStrides = rowMajorStrides(chunk.sizes)
    const run = hi[n - 1]! - lo[n - 1]!
    // Walk every index of the intersection except the last dimension; copy a run along the last.
    const idx = lo.slice(0, n - 1)
    for (;;) {
      let src = lo[n - 1]! - chunk.offsets[n - 1]!
      let dst = lo[n - 1]! - start[n - 1]!
      for (let d = 0; d < n - 1; d++) {
        src += (idx[d]! - chunk.offsets[d]!) * chunkStrides[d]!
        dst += (idx[d]! - start[d]!) * outStrides[d]!
      }
      convert(tensor.dtype, raw, src, out, dst, run)
      covered += run
      let d = n - 2
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
  return out
}
