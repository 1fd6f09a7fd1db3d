import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { expertCoactivation } from "../../../src/analysis/coactivation.ts"
import { loadBalance, loadStats } from "../../../src/analysis/loadBalance.ts"
import { routerSaturation } from "../../../src/analysis/saturation.ts"
import { expertSpecialization } from "../../../src/analysis/specialization.ts"
import { readSpecializationCounts } from "../../../src/analysis/specializationCounts.ts"
import { readTraceHeader } from "../../../src/analysis/TraceFile.ts"
import { writeTrace } from "../../../src/analysis/traceWriter.ts"
import { moeLayerPatternOf } from "../../../src/flame/moeLayerFreq.ts"
import { scales } from "../../../src/flame/scales.ts"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fp-routing-"))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

/**
 * A trace of 2 samples x 2 tokens, top-3 of 8 experts, one layer, from explicit rows: stored index 1, the
 * first MoE layer of a dense-first model, which the analyses name layer 2 (Megatron's number).
 */
const handTrace = (name: string, rows: ReadonlyArray<ReadonlyArray<number>>, tokens = [5, 6, 5, 7]) => {
  const file = path.join(dir, name)
  writeTrace(
    file,
    { layerIds: [1], topK: 3, numExperts: 8, seqLength: 2, sampleIndices: [0, 1] },
    Int32Array.from(tokens),
    () => [{ ids: Uint8Array.from(rows.flat()) }]
  )
  return file
}

describe("router saturation", () => {
  it("counts, for each k, the final top-k experts a token already had at the checkpoint", () => {
    const final = handTrace("final.bin", [[0, 1, 2], [3, 4, 5], [0, 1, 2], [6, 7, 0]])
    // token 0: same set, other order -> k=1: {1} vs {0}: 0; k=2: {1,0} vs {0,1}: 2/2; k=3: 3/3
    // token 1: [5,4,3] -> k=1: 0; k=2: {5,4} vs {3,4}: 1/2; k=3: 1
    // token 2: identical -> 1, 1, 1
    // token 3: [1,2,3] -> nothing in common -> 0, 0, 0
    const early = handTrace("early.bin", [[1, 0, 2], [5, 4, 3], [0, 1, 2], [1, 2, 3]])
    const result = routerSaturation({
      scale: "s",
      checkpoints: [{ step: 1, file: early }, { step: 2, file: final }],
      ks: [3, 2, 1]
    })
    expect(result.saturation[0]![0]).toEqual([(1 + 1 + 1 + 0) / 4, (1 + 0.5 + 1 + 0) / 4, (0 + 0 + 1 + 0) / 4])
    expect(result.saturation[0]![1]).toEqual([1, 1, 1])
    expect(result.finalStep).toBe(2)
  })

  it("refuses traces of different text or samples, naming both files", () => {
    const final = handTrace("f2.bin", [[0, 1, 2], [3, 4, 5], [0, 1, 2], [6, 7, 0]])
    const other = handTrace("o2.bin", [[0, 1, 2], [3, 4, 5], [0, 1, 2], [6, 7, 0]], [5, 6, 5, 8])
    expect(() =>
      routerSaturation({ scale: "s", checkpoints: [{ step: 1, file: other }, { step: 2, file: final }], ks: [1] })
    ).toThrow(/o2\.bin: tokens differs from .*f2\.bin: token 3 is 8 vs 7/)
  })
})

describe("trace validation", () => {
  it("names the file, layer (Megatron's number), token and byte of an expert id outside the router", () => {
    const bad = handTrace("bad.bin", [[0, 1, 2], [3, 9, 5], [0, 1, 2], [6, 7, 0]])
    expect(() => loadBalance({ scale: "s", checkpoints: [{ step: 1, file: bad }] })).toThrow(
      /bad\.bin: layer 2 token 1 slot 1: expert id 9 >= numExperts 8 \(byte \d+\)/
    )
  })

  it("rejects a truncated file and a bad magic before reading data", () => {
    const good = handTrace("good.bin", [[0, 1, 2], [3, 4, 5], [0, 1, 2], [6, 7, 0]])
    const truncated = path.join(dir, "truncated.bin")
    fs.writeFileSync(truncated, fs.readFileSync(good).subarray(0, fs.statSync(good).size - 3))
    expect(() => readTraceHeader(truncated)).toThrow(
      /truncated\.bin: file is \d+ bytes; .* implies \d+ \(truncated\?\)/
    )
    const magic = path.join(dir, "magic.bin")
    const bytes = fs.readFileSync(good)
    bytes.write("NOTTRACE", 0, "latin1")
    fs.writeFileSync(magic, bytes)
    expect(() => readTraceHeader(magic)).toThrow(/bad magic "NOTTRACE"/)
  })

  it("names a token id outside the vocabulary", () => {
    const file = handTrace("vocab.bin", [[0, 1, 2], [3, 4, 5], [0, 1, 2], [6, 7, 0]], [5, 6, 50, 7])
    expect(() =>
      expertSpecialization({
        scale: "s",
        step: 1,
        file,
        vocabSize: 10,
        minOccurrences: 1,
        topTokens: 3,
        countsFile: path.join(dir, "vocab.counts")
      })
    ).toThrow(/vocab\.bin: token 2 has id 50, outside the vocabulary of 10/)
    expect(fs.readdirSync(dir).filter((f) => f.startsWith("vocab.counts"))).toEqual([])
  })
})

describe("layer names", () => {
  it("are Megatron's layer numbers: a FLAME-MoE model's first MoE layer (after the dense one) is layer 2", () => {
    // flame-moe-38m's own pattern, "[0]*1+[1]*8": the worker stores the MoE layers' 0-based indices 1..8.
    const scale = scales[0]!
    const pattern = moeLayerPatternOf(scale.moeLayerFreq, scale.numLayers)
    const layerIds = pattern.flatMap((isMoe, i) => (isMoe ? [i] : []))
    expect(layerIds[0]).toBe(1)
    const megatron = Array.from({ length: scale.numLayers - 1 }, (_, i) => i + 2)
    const tokens = [5, 6, 5, 7]
    const rows = (l: number) => [[0, 1, 2], [3, 4, 5], [l % 8, (l + 1) % 8, (l + 2) % 8], [6, 7, 0]]
    const traceOf = (name: string) => {
      const file = path.join(dir, name)
      writeTrace(
        file,
        { layerIds, topK: 3, numExperts: 8, seqLength: 2, sampleIndices: [0, 1] },
        Int32Array.from(tokens),
        (l) => [{ ids: Uint8Array.from(rows(l).flat()) }]
      )
      expect(readTraceHeader(file).layerIds).toEqual(layerIds) // the stored format keeps 0-based indices
      return file
    }
    const file = traceOf("flame-layers.bin")
    const checkpoints = [{ step: 1, file }, { step: 2, file }]
    expect(routerSaturation({ scale: "s", checkpoints, ks: [1] }).layers).toEqual(megatron)
    expect(loadBalance({ scale: "s", checkpoints }).layers).toEqual(megatron)
    expect(expertCoactivation({ scale: "s", step: 2, file }).layers).toEqual(megatron)
    const countsFile = path.join(dir, "flame-layers.counts")
    const summary = expertSpecialization({
      scale: "s",
      step: 2,
      file,
      vocabSize: 10,
      minOccurrences: 1,
      topTokens: 2,
      countsFile
    })
    expect(summary.layers).toEqual(megatron)
    expect(summary.perLayer.map((l) => l.layer)).toEqual(megatron)
    expect(summary.perLayer[0]!.layer).toBe(2)
    expect(readSpecializationCounts(countsFile).layerIds).toEqual(layerIds)
  })
})

describe("load balance statistics", () => {
  it("are the textbook definitions", () => {
    const counts = new Float64Array(256)
    counts.set([1, 2, 3, 6])
    const s = loadStats(counts, 4)
    const mean = 3
    const std = Math.sqrt(((1 - mean) ** 2 + (2 - mean) ** 2 + 0 + (6 - mean) ** 2) / 4)
    expect(s.fractions).toEqual([1 / 12, 2 / 12, 3 / 12, 6 / 12])
    expect(s.cv).toBeCloseTo(std / mean, 14)
    expect(s.entropy).toBeCloseTo(-[1, 2, 3, 6].reduce((h, c) => h + (c / 12) * Math.log(c / 12), 0), 14)
    expect(s.maxOverMean).toBe(2)
    const uniform = new Float64Array(256)
    uniform.fill(5, 0, 4)
    expect(loadStats(uniform, 4)).toMatchObject({ cv: 0, maxOverMean: 1 })
    expect(loadStats(uniform, 4).normalizedEntropy).toBeCloseTo(1, 15)
  })
})
