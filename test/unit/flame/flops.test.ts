import { describe, expect, it } from "vitest"
import { tokensPerIteration } from "../../../src/flame/architecture.ts"
import { megatronFlopsPerIteration, publishedFlopsSettings, sixNDFlops } from "../../../src/flame/flops.ts"
import { countParams } from "../../../src/flame/paramCount.ts"
import { scales } from "../../../src/flame/scales.ts"

describe("6 N D", () => {
  it("tokensTrained = trainIters * 1024 * 2048 matches the published token counts (printed to 3 digits)", () => {
    for (const s of scales) {
      const tokens = s.trainIters * tokensPerIteration()
      expect(Math.abs(tokens / s.published.tokensTrained - 1), s.id).toBeLessThan(0.02)
    }
    expect(scales[0]!.trainIters * tokensPerIteration()).toBe(4_448_059_392)
  })

  it("6 * active params * tokens reproduces the published training FLOPs budgets within 3%", () => {
    for (const s of scales) {
      const flops = sixNDFlops(countParams(s).active, s.trainIters * tokensPerIteration())
      expect(Math.abs(flops / s.published.trainingFlops - 1), s.id).toBeLessThan(0.03)
      // The budgets are nominal: every run lands slightly above its round figure.
      expect(flops).toBeGreaterThan(s.published.trainingFlops)
    }
  })
})

describe("megatronFlopsPerIteration", () => {
  it("equals the per-token expansion worked out by hand for flame-moe-38m", () => {
    // Per token: attention 9 * (24 h^2 + 6 s h) = 42,467,328; dense MLP 18 h ffn = 6,303,744;
    // MoE 8 * 18 h (6 * 176 + 352) = 51,904,512; logits 6 h V = 77,266,944. Sum 177,942,528.
    expect(megatronFlopsPerIteration(scales[0]!)).toBeCloseTo(177_942_528 * 1024 * 2048, -3)
  })

  it("reacts to grouped-query attention and the query projection size", () => {
    const s = scales[0]!
    const base = megatronFlopsPerIteration(s)
    const gqa = megatronFlopsPerIteration(s, { ...publishedFlopsSettings, numQueryGroups: 4 })
    // K and V shrink from h q to h q / 4 each: 6 * 2 * h * q * (3/4) per token per layer.
    expect(base - gqa).toBeCloseTo(9 * 6 * 2 * 256 * 256 * 0.75 * 2 ** 21, -3)
    const wideQ = megatronFlopsPerIteration(s, { ...publishedFlopsSettings, queryProjectionSize: 512 })
    expect(wideQ).toBeGreaterThan(base)
  })

  it("is 6 FLOPs per active matmul weight plus attention scores, leaving out embeddings, norms and routers", () => {
    for (const s of scales) {
      const { active, breakdown } = countParams(s)
      // Megatron's formula has no router term (h x 64 per MoE layer): it is not exactly 6 N.
      const matmulParams = active - breakdown.embedding - breakdown.norms - breakdown.routers
      const attentionScores = s.numLayers * 6 * 2048 * s.hiddenSize
      expect(megatronFlopsPerIteration(s) / tokensPerIteration()).toBeCloseTo(
        6 * matmulParams + attentionScores,
        -2
      )
    }
  })
})
