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

describe("an absolute warm-up (warmupIters)", () => {
  const at = (trainIters: number, warmupIters: number) => ({ ...flameWsdSchedule(trainIters), warmupIters })

  it("ramps from 0 over that many iterations, whatever trainIters is", () => {
    for (const trainIters of [1000, 11029]) {
      const s = at(trainIters, 200)
      expect(lrAfterSteps(s, 0)).toBe(0)
      expect(lrAfterSteps(s, 50)).toBeCloseTo(3e-4 * 50 / 200, 18)
      expect(lrAfterSteps(s, 200)).toBeCloseTo(3e-4, 18)
      expect(lrAfterSteps(s, 201)).toBe(3e-4)
    }
  })

  it("equals the fractional warm-up when it is the same number of iterations", () => {
    // 1% of 11000 is 110 iterations exactly.
    for (let k = 0; k <= 11000; k += 7) {
      expect(lrAfterSteps(at(11000, 110), k)).toBe(lrAfterSteps(flameWsdSchedule(11000), k))
    }
  })

  it("lets runs of different lengths agree on every step before the shorter one's anneal", () => {
    const short = at(5000, 100)
    const long = at(20000, 100)
    for (let k = 0; k <= 5000 - Math.floor(5000 / 10); k++) expect(lrAfterSteps(short, k)).toBe(lrAfterSteps(long, k))
    // With 1% warm-up they would not: 50 vs 200 warm-up iterations.
    expect(lrAfterSteps(flameWsdSchedule(5000), 60)).not.toBe(lrAfterSteps(flameWsdSchedule(20000), 60))
  })
})
