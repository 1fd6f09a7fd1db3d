import { describe, expect, it } from "vitest"
import { logObjective, rawObjective } from "../../../src/scaling/law.ts"
import type { Objective } from "../../../src/scaling/lbfgsb.ts"
import { moreThuente } from "../../../src/scaling/lineSearch.ts"
import { syntheticRuns } from "./syntheticRuns.ts"

describe("the scaling-law objectives", () => {
  const runs = syntheticRuns(3e-3, 5)
  const central = (f: Objective, x: ReadonlyArray<number>, i: number, h: number) => {
    const g = new Float64Array(x.length)
    const up = Float64Array.from(x)
    const down = Float64Array.from(x)
    up[i] = up[i]! + h
    down[i] = down[i]! - h
    return (f(up, g) - f(down, g)) / (2 * h)
  }
  it("have exact gradients (central differences)", () => {
    // Points chosen inside the Huber's linear and quadratic regions alike (delta 0.05 gives both).
    for (const delta of [1e-3, 0.05]) {
      const raw = rawObjective(runs, delta)
      const log = logObjective(runs, delta)
      for (const x of [[2.3, 160, 0.3, 3.1e6, 0.71], [1.9, 400, 0.35, 2e7, 0.8]]) {
        const g = new Float64Array(5)
        raw(Float64Array.from(x), g)
        x.forEach((v, i) => {
          const fd = central(raw, x, i, 1e-6 * Math.max(1, Math.abs(v)))
          expect(Math.abs(g[i]! - fd), `raw d/dx${i} delta ${delta}`).toBeLessThan(1e-6 * Math.max(1, Math.abs(fd)))
        })
        const lx = [Math.log(x[0]!), Math.log(x[1]!), x[2]!, Math.log(x[3]!), x[4]!]
        log(Float64Array.from(lx), g)
        lx.forEach((_, i) => {
          const fd = central(log, lx, i, 1e-6)
          expect(Math.abs(g[i]! - fd), `log d/dx${i} delta ${delta}`).toBeLessThan(1e-6 * Math.max(1, Math.abs(fd)))
        })
      }
    }
  })

  it("agree with each other where both are defined", () => {
    const x = [2.3, 160, 0.3, 3.1e6, 0.71]
    const g = new Float64Array(5)
    const raw = rawObjective(runs, 1e-3)(Float64Array.from(x), g)
    const log = logObjective(runs, 1e-3)(
      Float64Array.from([Math.log(2.3), Math.log(160), 0.3, Math.log(3.1e6), 0.71]),
      g
    )
    expect(Math.abs(raw - log)).toBeLessThan(1e-12)
  })

  it("raw: +Infinity where the prediction is not positive", () => {
    expect(rawObjective(runs, 1e-3)(Float64Array.from([-10, 1, 0.3, 1, 0.7]), new Float64Array(5))).toBe(Infinity)
  })
})

describe("Moré–Thuente", () => {
  it("returns a step satisfying the strong Wolfe conditions", () => {
    const ftol = 1e-3
    const gtol = 0.1
    // The paper's first test function, phi(a) = -a / (a^2 + 2), and a steep convex one.
    const fns = [
      (a: number) => ({ f: -a / (a * a + 2), g: (a * a - 2) / (a * a + 2) ** 2 }),
      (a: number) => ({ f: (a - 3) ** 4 - 4 * a, g: 4 * (a - 3) ** 3 - 4 })
    ]
    for (const phi of fns) {
      for (const stp0 of [1e-3, 1e-1, 1, 10]) {
        const { f: f0, g: g0 } = phi(0)
        const r = moreThuente(phi, f0, g0, stp0, { ftol, gtol, xtol: 0.1, stpmin: 0, stpmax: 1e10, maxEvaluations: 30 })
        expect(r._tag, `stp0 ${stp0}`).toBe("Converged")
        if (r._tag !== "Converged") continue
        const { f, g } = phi(r.stp)
        expect(f).toBeLessThanOrEqual(f0 + ftol * r.stp * g0)
        expect(Math.abs(g)).toBeLessThanOrEqual(gtol * Math.abs(g0))
      }
    }
  })

  it("backs away from where the objective is undefined", () => {
    const phi = (a: number) => (a > 2 ? { f: Number.NaN, g: Number.NaN } : { f: (a - 1.5) ** 2, g: 2 * (a - 1.5) })
    const r = moreThuente(phi, 2.25, -3, 100, {
      ftol: 1e-3,
      gtol: 0.9,
      xtol: 0.1,
      stpmin: 0,
      stpmax: 1e10,
      maxEvaluations: 40
    })
    expect(r._tag).not.toBe("Failed")
    if (r._tag !== "Failed") expect(r.stp).toBeLessThanOrEqual(2)
  })
})
