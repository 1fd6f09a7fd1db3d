import { describe, expect, it } from "vitest"
import { ablationBudgets } from "../../../src/flame/ablationGrid.ts"
import { computeOptimal, isoFlopCurve } from "../../../src/scaling/computeOptimal.ts"
import { fitScalingLaw, flameInitialGrid, gridStarts } from "../../../src/scaling/fit.ts"
import type { LawParams } from "../../../src/scaling/law.ts"
import { huber, objectiveValue, predictLoss } from "../../../src/scaling/law.ts"
import { publishedLaw } from "../../../src/scaling/published.ts"
import { syntheticRuns } from "./syntheticRuns.ts"

const relative = (a: number, b: number) => Math.abs(a / b - 1)

describe("the initial grid", () => {
  it("spans FLAME-MoE's ranges with the published A and B on it", () => {
    expect(flameInitialGrid.logE).toEqual([-1, -0.5, 0, 0.5, 1])
    expect(flameInitialGrid.logA).toEqual([0, 5, 10, 15, 20, 25])
    expect(flameInitialGrid.alpha).toEqual([0, 0.5, 1, 1.5, 2])
    const starts = gridStarts(flameInitialGrid)
    expect(starts).toHaveLength(5 * 6 * 5 * 6 * 5)
    expect(relative(Math.exp(5), publishedLaw.A)).toBeLessThan(1e-6)
    expect(relative(Math.exp(15), publishedLaw.B)).toBeLessThan(1e-12)
  })
})

describe("fitting the law", () => {
  it("from the published A and B, the raw method recovers E, alpha and beta and leaves A and B", () => {
    // Noise-free points; the part of the grid that starts at A = e^5, B = e^15.
    const runs = syntheticRuns(0, 1)
    const fit = fitScalingLaw(runs, { method: "raw", grid: { ...flameInitialGrid, logA: [5], logB: [15] } })
    expect(relative(fit.params.A, Math.exp(5))).toBeLessThan(1e-4)
    expect(relative(fit.params.B, Math.exp(15))).toBeLessThan(1e-12)
    expect(relative(fit.params.E, publishedLaw.E)).toBeLessThan(1e-4)
    expect(relative(fit.params.alpha, publishedLaw.alpha)).toBeLessThan(1e-4)
    expect(relative(fit.params.beta, publishedLaw.beta)).toBeLessThan(1e-4)
  })

  it("recovers the published law from noisy points with both methods, deterministically", { timeout: 60_000 }, () => {
    // 0.05% multiplicative noise on the 80 published (N, D) pairs: the recovered constants and the losses
    // they predict must be within what that noise allows; A is the least identified (a ridge with alpha).
    const runs = syntheticRuns(5e-4, 3)
    for (const method of ["raw", "log"] as const) {
      const fit = fitScalingLaw(runs, { method })
      const p = fit.params
      expect(fit.startsTried).toBe(4500)
      expect(Math.abs(p.E - publishedLaw.E), method).toBeLessThan(0.03)
      expect(Math.abs(p.alpha - publishedLaw.alpha), method).toBeLessThan(0.015)
      expect(Math.abs(p.beta - publishedLaw.beta), method).toBeLessThan(0.005)
      expect(relative(p.A, publishedLaw.A), method).toBeLessThan(0.2)
      expect(relative(p.B, publishedLaw.B), method).toBeLessThan(0.03)
      for (const r of runs) {
        expect(relative(predictLoss(p, r.N, r.D), predictLoss(publishedLaw, r.N, r.D))).toBeLessThan(1e-3)
      }
      for (const c of [...ablationBudgets, 1e21]) {
        expect(relative(computeOptimal(p, c).activeParams, computeOptimal(publishedLaw, c).activeParams)).toBeLessThan(
          0.03
        )
      }
      // The fit is at least as good as the truth on its own data, and the objective reported is the objective.
      expect(fit.objective).toBeLessThanOrEqual(objectiveValue(runs, 1e-3, publishedLaw))
      expect(Math.abs(fit.objective - objectiveValue(runs, 1e-3, p))).toBeLessThan(1e-12)
    }
  })

  it("reports the objective as FLAME-MoE's notebook does: the mean of the Huber losses", () => {
    const runs = syntheticRuns(1e-2, 4)
    const grid = { logE: [0.5], logA: [5], alpha: [0.5], logB: [15], beta: [0.5] }
    for (const method of ["raw", "log"] as const) {
      const fit = fitScalingLaw(runs, { method, grid })
      const losses = runs.map((r) => huber(1e-3, Math.log(r.loss) - Math.log(predictLoss(fit.params, r.N, r.D))))
      expect(relative(fit.objective, losses.reduce((s, l) => s + l, 0) / runs.length), method).toBeLessThan(1e-12)
    }
    expect(fitScalingLaw(runs, { method: "raw", grid }).reduction).toBe("mean")
    expect(fitScalingLaw(runs, { method: "log", grid }).reduction).toBe("sum")
  })

  it("is deterministic", () => {
    const runs = syntheticRuns(2e-3, 9)
    const grid = { logE: [0, 1], logA: [5, 15], alpha: [0.5, 1], logB: [10, 20], beta: [0.5, 1.5] }
    for (const method of ["raw", "log"] as const) {
      expect(fitScalingLaw(runs, { method, grid })).toEqual(fitScalingLaw(runs, { method, grid }))
    }
  })

  it("names a run that cannot be fitted", () => {
    expect(() => fitScalingLaw([{ N: 1e8, D: 1e9, loss: 3 }, { N: 1e8, D: 0, loss: 3 }], { method: "log" })).toThrow(
      /run 1 has N=100000000, D=0, loss=3/
    )
  })
})

describe("FLAME-MoE's fit (analysis/find_scaling_law.ipynb at e9b2fe2)", () => {
  // 80 points of the published law at the ablation's (N, D), with 1% multiplicative noise. On the mean of
  // the Huber losses (the notebook's objective) L-BFGS-B's absolute stopping tests stop every start once E,
  // alpha and beta fit, A and B still at their grid values: the published A = e^5 and B = e^15. On the sum
  // (80 times larger) the starts run on along the A-alpha ridge, and the best lands at A ~ 550, alpha ~ 0.36,
  // E ~ 2.39 (N*(C) +13% to -6% of the mean's over the ablation's budgets): what this describe block must not pass.
  const runs = syntheticRuns(1e-2, 1)

  it("raw: A and B stay at e^5 and e^15 as in the published constants", { timeout: 60_000 }, () => {
    const fit = fitScalingLaw(runs, { method: "raw" })
    const p = fit.params
    expect(relative(p.A, Math.exp(5))).toBeLessThan(1e-4)
    expect(relative(p.A, publishedLaw.A)).toBeLessThan(1e-4)
    expect(relative(p.B, Math.exp(15))).toBeLessThan(1e-9)
    expect(relative(p.B, publishedLaw.B)).toBeLessThan(1e-9)
    expect(Math.abs(p.E - publishedLaw.E)).toBeLessThan(0.02)
    expect(Math.abs(p.alpha - publishedLaw.alpha)).toBeLessThan(0.005)
    expect(Math.abs(p.beta - publishedLaw.beta)).toBeLessThan(0.002)
    // ... where the best start put them.
    expect(Math.log(fit.start.A)).toBeCloseTo(5, 12)
    expect(Math.log(fit.start.B)).toBeCloseTo(15, 12)
    for (const c of ablationBudgets) {
      expect(relative(computeOptimal(p, c).activeParams, computeOptimal(publishedLaw, c).activeParams)).toBeLessThan(
        0.02
      )
    }
    expect(fit.reduction).toBe("mean")
  })
})

describe("compute-optimal allocation", () => {
  /** Golden-section search of L(N, C / 6N) over log N: an independent route to N*(C). */
  const numericOptimum = (p: LawParams, flops: number) => {
    const loss = (logN: number) => predictLoss(p, Math.exp(logN), flops / (6 * Math.exp(logN)))
    let lo = Math.log(1e3)
    let hi = Math.log(flops / 6 / 1e3)
    const phi = (Math.sqrt(5) - 1) / 2
    for (let i = 0; i < 200; i++) {
      const a = hi - phi * (hi - lo)
      const b = lo + phi * (hi - lo)
      if (loss(a) < loss(b)) hi = b
      else lo = a
    }
    return Math.exp((lo + hi) / 2)
  }

  it("N*(C) is the minimiser of the iso-FLOP curve", () => {
    for (const flops of [...ablationBudgets, 1e21, 1e23]) {
      const opt = computeOptimal(publishedLaw, flops)
      expect(relative(opt.activeParams, numericOptimum(publishedLaw, flops))).toBeLessThan(1e-6)
      expect(relative(6 * opt.activeParams * opt.tokens, flops)).toBeLessThan(1e-12)
      const curve = isoFlopCurve(publishedLaw, flops, opt.activeParams / 10, opt.activeParams * 10, 41)
      const lowest = curve.points.reduce((best, q) => (q.loss < best.loss ? q : best))
      expect(relative(lowest.activeParams, opt.activeParams)).toBeLessThan(1e-9)
      expect(lowest.loss).toBeGreaterThanOrEqual(opt.loss - 1e-12)
    }
  })

  it("has no interior optimum when alpha or beta is 0", () => {
    expect(computeOptimal({ ...publishedLaw, alpha: 0 }, 1e19).activeParams).toBeNaN()
  })
})
