/**
 * FLAME-MoE's scaling-law fit against scipy's L-BFGS-B running the notebook's selection over the same
 * starts (scipy_oracle.py, a "grid" problem).
 */
import { execFileSync } from "node:child_process"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { fitScalingLaw, gridStarts } from "../../../src/scaling/fit.ts"
import { rawVector } from "../../../src/scaling/law.ts"
import { pythonWith } from "../../support/python.ts"
import { syntheticRuns } from "../../unit/scaling/syntheticRuns.ts"

const relative = (a: number, b: number) => Math.abs(a / b - 1)

/** FLAME-MoE's selection run by scipy (scipy_oracle.py, a "grid" problem): the best start and where it ended. */
const scipyGrid = (problem: object): { x: Array<number>; fun: number; start: number } =>
  JSON.parse(
    execFileSync(pythonWith("numpy", "scipy.optimize"), [path.join(import.meta.dirname, "scipy_oracle.py")], {
      input: JSON.stringify([{ kind: "grid", delta: 1e-3, ...problem }]),
      encoding: "utf8"
    })
  )[0]

describe("FLAME-MoE's fit (analysis/find_scaling_law.ipynb at e9b2fe2)", () => {
  // 80 points of the published law at the ablation's (N, D), with 1% multiplicative noise. On the mean of
  // the Huber losses (the notebook's objective) L-BFGS-B's absolute stopping tests stop every start once E,
  // alpha and beta fit, A and B still at their grid values: the published A = e^5 and B = e^15. On the sum
  // (80 times larger) the starts run on along the A-alpha ridge, and the best lands at A ~ 550, alpha ~ 0.36,
  // E ~ 2.39 (N*(C) +13% to -6% of the mean's over the ablation's budgets): what this describe block must not pass.
  const runs = syntheticRuns(1e-2, 1)

  it("raw: the same best start and constants as scipy's L-BFGS-B on the notebook's objective", () => {
    // A corner of FLAME-MoE's grid holding the start the mean's best fit comes from (e^0.5, e^5, 0.5, e^15, 1)
    // and the one the sum's does (e^-1, e^0, 0, e^15, 0). Over the whole grid (4,500 starts; minutes in
    // scipy) both give E 2.234296, A 148.413165, alpha 0.279291, B e^15, beta 0.715447 on these runs; with the
    // notebook's finite differences for the gradient scipy gives E 2.234095, A 148.412934, alpha 0.279279,
    // beta 0.715444, mean objective 7.62250e-6 (7.62250e-6 here).
    const grid = { logE: [-1, 0.5], logA: [0, 5], alpha: [0, 0.5], logB: [15], beta: [0, 1] }
    const starts = gridStarts(grid)
    const want = scipyGrid({ param: "raw", runs, starts: starts.map(rawVector) })
    const fit = fitScalingLaw(runs, { method: "raw", grid })
    expect(starts.findIndex((s) => rawVector(s).every((v, i) => v === rawVector(fit.start)[i]))).toBe(want.start)
    rawVector(fit.params).forEach((v, k) =>
      expect(Math.abs(v - want.x[k]!), `x[${k}]`).toBeLessThanOrEqual(1e-7 * Math.max(1, Math.abs(v)))
    )
    expect(relative(fit.objective, want.fun)).toBeLessThan(1e-9)
    expect(relative(fit.params.A, Math.exp(5))).toBeLessThan(1e-4)
  })
})
