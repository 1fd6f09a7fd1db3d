import { describe, expect, it } from "vitest"
import {
  annealStart,
  flameWsdSchedule,
  lrAfterSteps,
  lrAtIteration,
  warmupIters,
  type WsdSchedule
} from "../../../src/flame/schedule.ts"

const big = flameWsdSchedule(11029)

describe("WSD schedule of flame-moe-1.7b", () => {
  it("has the published phase boundaries", () => {
    expect(warmupIters(big)).toBeCloseTo(110.29, 10)
    expect(big.wsdIters).toBe(1102)
    expect(annealStart(big)).toBe(9927)
  })

  it("warms up from 0 at iteration 1 (the scheduler is stepped once before training)", () => {
    expect(lrAtIteration(big, 1)).toBe(0)
    // Iteration 2 ran after one step: 3e-4 * 1 / 110.29.
    expect(lrAtIteration(big, 2)).toBeCloseTo(2.720101550458e-6, 15)
    // Iteration 111: 110 steps, still inside the 110.29-step warmup.
    expect(lrAtIteration(big, 111)).toBeCloseTo(3e-4 * 110 / 110.29, 15)
    expect(lrAtIteration(big, 111)).toBeLessThan(3e-4)
  })

  it("is flat at the peak until the anneal starts", () => {
    expect(lrAtIteration(big, 112)).toBe(3e-4)
    expect(lrAtIteration(big, 5000)).toBe(3e-4)
    // 9927 completed steps is the last stable one.
    expect(lrAtIteration(big, 9928)).toBe(3e-4)
    expect(lrAtIteration(big, 9929)).toBeLessThan(3e-4)
  })

  it("decays exponentially: coeff = 2 * 0.5^r - 1", () => {
    // r = 0.5 after 551 of 1102 decay steps: coeff = sqrt(2) - 1.
    expect(lrAfterSteps(big, 9927 + 551)).toBeCloseTo(3e-5 + (Math.SQRT2 - 1) * 2.7e-4, 15)
    // Last iteration: r = 1101 / 1102.
    const r = 1101 / 1102
    expect(lrAtIteration(big, 11029)).toBeCloseTo(3e-5 + (2 * 0.5 ** r - 1) * 2.7e-4, 15)
    expect(lrAfterSteps(big, 11029)).toBeCloseTo(3e-5, 15)
    expect(lrAfterSteps(big, 11030)).toBe(3e-5)
  })

  it("is monotone: up, flat, down", () => {
    let previous = -1
    let peakReached = false
    for (let it = 1; it <= 11029; it++) {
      const lr = lrAtIteration(big, it)
      if (!peakReached) {
        expect(lr).toBeGreaterThanOrEqual(previous)
        peakReached = lr === 3e-4
      } else {
        expect(lr).toBeLessThanOrEqual(previous)
      }
      previous = lr
    }
    expect(peakReached).toBe(true)
  })

  it("supports Megatron's other decay styles", () => {
    const linear: WsdSchedule = { ...big, decayStyle: "linear" }
    const cosine: WsdSchedule = { ...big, decayStyle: "cosine" }
    expect(lrAfterSteps(linear, 9927 + 551)).toBeCloseTo(3e-5 + 0.5 * 2.7e-4, 15)
    expect(lrAfterSteps(cosine, 9927 + 551)).toBeCloseTo(3e-5 + 0.5 * 2.7e-4, 15)
    expect(lrAfterSteps(cosine, 9927 + 275.5)).toBeCloseTo(3e-5 + 0.5 * (Math.cos(Math.PI / 4) + 1) * 2.7e-4, 15)
  })
})
