/**
 * Writes a trace in the worker's format (TraceFile.ts): for synthetic traces in tests and benchmarks.
 * Streams layer by layer, so a benchmark trace of hundreds of millions of tokens never sits in memory.
 */
import * as fs from "node:fs"
import { TRACE_MAGIC, TRACE_VERSION } from "./TraceFile.ts"

export interface TraceShape {
  /** 0-based layer indices, as the worker stores them (a dense first layer makes the first MoE layer 1). */
  readonly layerIds: ReadonlyArray<number>
  readonly topK: number
  readonly numExperts: number
  readonly seqLength: number
  readonly sampleIndices: ReadonlyArray<number>
}

const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength)

export const writeTrace = (
  file: string,
  shape: TraceShape,
  /** Token ids, or chunks of them in order. */
  tokens: Int32Array | Iterable<Int32Array>,
  /** For each layer: its expert ids (numTokens x topK), whole or in chunks; probabilities are made up when absent. */
  layer: (index: number) => Iterable<{ readonly ids: Uint8Array; readonly probs?: Float32Array }>
): void => {
  const numTokens = shape.sampleIndices.length * shape.seqLength
  const tmp = `${file}.tmp-${process.pid}`
  const fd = fs.openSync(tmp, "w")
  try {
    const header = Buffer.alloc(40)
    header.write(TRACE_MAGIC, 0, "latin1")
    header.writeUInt32LE(TRACE_VERSION, 8)
    header.writeUInt32LE(shape.layerIds.length, 12)
    header.writeUInt32LE(shape.topK, 16)
    header.writeUInt32LE(shape.numExperts, 20)
    header.writeUInt32LE(shape.seqLength, 24)
    header.writeUInt32LE(shape.sampleIndices.length, 28)
    header.writeBigUInt64LE(BigInt(numTokens), 32)
    fs.writeSync(fd, header)
    fs.writeSync(fd, bytes(Uint32Array.from(shape.layerIds)))
    fs.writeSync(fd, bytes(BigUint64Array.from(shape.sampleIndices, (i) => BigInt(i))))
    let written = 0
    for (const chunk of tokens instanceof Int32Array ? [tokens] : tokens) {
      fs.writeSync(fd, bytes(chunk))
      written += chunk.length
    }
    if (written !== numTokens) throw new Error(`writeTrace: ${written} token ids for ${numTokens} tokens`)
    shape.layerIds.forEach((_, l) => {
      const given: Array<Float32Array> = []
      let slots = 0
      for (const chunk of layer(l)) {
        fs.writeSync(fd, chunk.ids)
        slots += chunk.ids.length
        if (chunk.probs) given.push(chunk.probs)
      }
      if (slots !== numTokens * shape.topK) {
        throw new Error(`writeTrace: traced layer #${l} (index ${shape.layerIds[l]}) has ${slots} slots`)
      }
      if (given.length > 0) {
        for (const p of given) fs.writeSync(fd, bytes(p))
      } else {
        // Slots are in descending probability; a made-up 1/(j+2) for slot j keeps that true.
        const step = Math.min(slots, Math.max(shape.topK, (1 << 20) - ((1 << 20) % shape.topK)))
        const block = Float32Array.from({ length: step }, (_, i) => 1 / ((i % shape.topK) + 2))
        for (let at = 0; at < slots; at += step) fs.writeSync(fd, bytes(block.subarray(0, Math.min(step, slots - at))))
      }
    })
    fs.closeSync(fd)
    fs.renameSync(tmp, file)
  } catch (e) {
    try {
      fs.closeSync(fd)
    } catch {
      // Closed already.
    }
    fs.rmSync(tmp, { force: true })
    throw e
  }
}
