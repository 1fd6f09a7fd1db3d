import { Either, Schema } from "effect"
import { describe, expect, it } from "vitest"
import { checkpointSteps } from "../../../src/flame/checkpoints.ts"
import { parseMoeLayerFreq } from "../../../src/flame/moeLayerFreq.ts"
import { scales } from "../../../src/flame/scales.ts"
import { TinyScale } from "../../../src/flame/schema.ts"
import {
  defaultTinyOptions,
  tinyParamCount,
  tinyScaleOf,
  tinyScales,
  tinyTrainingFlops
} from "../../../src/flame/tinyPreset.ts"

const tiny = tinyScales()

describe("tiny preset", () => {
  it("keeps the seven scales, suffixed, and decodes with its schema", () => {
    expect(tiny.map((t) => t.id)).toEqual(scales.map((s) => `${s.id}-tiny`))
    for (const t of tiny) expect(() => Schema.decodeUnknownSync(TinyScale)(t)).not.toThrow()
  })

  it("keeps the MoE structure: 16 heads, 64 experts, top-6, shared 2x, dense first layer", () => {
    for (const t of tiny) {
      // An even dimension for each of the 16 heads (RoPE rotates halves).
      expect(t.hiddenSize % 32, t.id).toBe(0)
      expect([t.numAttentionHeads, t.numExperts, t.routerTopK, t.sharedExpertWidthFactor]).toEqual([16, 64, 6, 2])
      const pattern = Either.getOrThrow(parseMoeLayerFreq(t.moeLayerFreq, t.numLayers))
      expect(pattern[0]).toBe(false)
      expect(pattern.filter((isMoe) => isMoe).length).toBeGreaterThanOrEqual(2)
    }
  })

  it("has the published width ratios and the shape listed in the rationale", () => {
    const smallest = tiny[0]!
    expect([smallest.hiddenSize, smallest.ffnHiddenSize, smallest.moeFfnHiddenSize, smallest.numLayers]).toEqual([
      32,
      172,
      22,
      3
    ])
    const largest = tiny[6]!
    expect([largest.hiddenSize, largest.ffnHiddenSize, largest.moeFfnHiddenSize, largest.numLayers]).toEqual([
      160,
      856,
      110,
      6
    ])
    expect(tiny.map((t) => t.hiddenSize)).toEqual([32, 64, 64, 96, 96, 128, 160])
  })

  it("keeps the order of sizes: active and total parameters strictly increase", () => {
    const counts = tiny.map(tinyParamCount)
    for (let i = 1; i < counts.length; i++) {
      expect(counts[i]!.active).toBeGreaterThan(counts[i - 1]!.active)
      expect(counts[i]!.total).toBeGreaterThan(counts[i - 1]!.total)
    }
  })

  it("saves 10 interval checkpoints and, as the published runs, Megatron's extra final one; longer runs for larger models", () => {
    for (const [i, t] of tiny.entries()) {
      const steps = checkpointSteps(t)
      expect(steps, t.id).toHaveLength(11)
      expect(steps.filter((s) => s % t.saveInterval === 0), t.id).toHaveLength(10)
      // Every published run ends off its save interval (e.g. 2121 = 10 x 212 + 1).
      expect(scales[i]!.trainIters % scales[i]!.saveInterval).toBeGreaterThan(0)
      expect(t.trainIters % t.saveInterval, t.id).toBe(1)
    }
    const iters = tiny.map((t) => t.trainIters)
    expect(iters).toEqual([...iters].sort((a, b) => a - b))
  })

  it("uses the fixture tokenizer's vocabulary padded to a multiple of 128 and short sequences", () => {
    expect(tiny[0]!.paddedVocabSize).toBe(2560)
    expect(tinyScaleOf(scales[0]!, { ...defaultTinyOptions, vocabSize: 2600 }).paddedVocabSize).toBe(2688)
    expect(tiny[0]!.seqLength).toBeLessThanOrEqual(128)
  })

  it("is parametric and its cost estimate follows the options", () => {
    const half = tinyScales({ ...defaultTinyOptions, iterDivisor: 400 })
    expect(half[6]!.trainIters).toBeLessThan(tiny[6]!.trainIters)
    expect(tinyTrainingFlops(half[6]!)).toBeLessThan(tinyTrainingFlops(tiny[6]!))
    // All seven trainings together stay around a couple of TFLOPs (minutes on 2 cores).
    const suite = tiny.reduce((sum, t) => sum + tinyTrainingFlops(t), 0)
    expect(suite).toBeLessThan(3e12)
  })
})
