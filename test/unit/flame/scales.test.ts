import { Either, Schema } from "effect"
import { describe, expect, it } from "vitest"
import { architecture, training } from "../../../src/flame/architecture.ts"
import { parseMoeLayerFreq } from "../../../src/flame/moeLayerFreq.ts"
import { parseCountLabel, scaleById, scales } from "../../../src/flame/scales.ts"
import { Architecture, Scale, Training } from "../../../src/flame/schema.ts"

describe("published constants", () => {
  it("decode with their schemas", () => {
    expect(() => Schema.decodeUnknownSync(Architecture)(architecture)).not.toThrow()
    expect(() => Schema.decodeUnknownSync(Training)(training)).not.toThrow()
    for (const s of scales) expect(() => Schema.decodeUnknownSync(Scale)(s)).not.toThrow()
  })

  it("carry the values of the FLAME-MoE scripts", () => {
    expect(training.globalBatchSize * training.seqLength).toBe(2 ** 21)
    expect([training.lr, training.minLr, training.lrWarmupFraction]).toEqual([3e-4, 3e-5, 0.01])
    expect([architecture.numExperts, architecture.routerTopK, architecture.sharedExpertWidthFactor]).toEqual([64, 6, 2])
    expect([architecture.auxLossCoeff, architecture.zLossCoeff, architecture.paddedVocabSize]).toEqual([
      0.01,
      0.001,
      50304
    ])
    expect(training.dataSplit).toEqual([90, 5, 5])
    expect(training.seed).toBe(1234)
  })

  it("are the seven scales in order of size", () => {
    expect(scales.map((s) => s.id)).toEqual([
      "flame-moe-38m",
      "flame-moe-98m",
      "flame-moe-115m",
      "flame-moe-290m",
      "flame-moe-419m",
      "flame-moe-721m",
      "flame-moe-1.7b"
    ])
    const big = scaleById("flame-moe-1.7b")
    expect([big.numLayers, big.hiddenSize, big.ffnHiddenSize, big.moeFfnHiddenSize]).toEqual([18, 2048, 10944, 1408])
    expect([big.microBatchSize, big.trainIters, big.saveInterval]).toEqual([4, 11029, 1100])
  })

  it("have a dense first layer and MoE layers after it, hidden sizes divisible by the heads", () => {
    for (const s of scales) {
      const pattern = Either.getOrThrow(parseMoeLayerFreq(s.moeLayerFreq, s.numLayers))
      expect(pattern[0]).toBe(false)
      expect(pattern.slice(1).every((isMoe) => isMoe)).toBe(true)
      expect(s.hiddenSize % architecture.numAttentionHeads).toBe(0)
      expect(s.saveInterval).toBe(s.evalInterval)
    }
  })
})

describe("parseCountLabel", () => {
  it("reads printed counts and their precision", () => {
    expect(parseCountLabel("38M")).toEqual({ value: 38e6, decimals: 0, unit: 1e6 })
    expect(parseCountLabel("10.3B")).toEqual({ value: 10.3e9, decimals: 1, unit: 1e9 })
    expect(() => parseCountLabel("10.3 B")).toThrow()
  })
})
