/**
 * The scaling law of FLAME-MoE (facts: scalingLaw), after Hoffmann et al. 2022:
 *
 *   L(N, D) = E + A / N^alpha + B / D^beta,   N = active parameters, D = training tokens,
 *
 * and the fit objective: the mean over runs of Huber_delta(log L_pred - log L_obs), delta = 1e-3, as
 * FLAME-MoE's notebook computes it (analysis/find_scaling_law.ipynb, `huber_loss`: np.mean). The sum is
 * the same minimiser at n times the scale; since L-BFGS-B's stopping tests are absolute (pgtol on the
 * gradient, factr * eps on the decrease when |f| < 1), the scale decides where each start stops, so
 * the reduction is a parameter here (`Reduction`) and objectives are reported as the mean.
 * Two parameterisations of the same objective:
 *
 * - raw (E, A, alpha, B, beta): what FLAME-MoE optimised. A and B are O(e^5)..O(e^25) while their
 *   gradients are O(N^-alpha): L-BFGS-B barely moves them (facts: scalingLaw.observations);
 * - log (e = log E, a = log A, alpha, b = log B, beta) with log L_pred = LSE(a - alpha log N,
 *   b - beta log D, e), as Hoffmann et al. do: every variable is O(1) and the objective is defined
 *   everywhere.
 *
 * Both return the objective and its exact gradient (Objective of lbfgsb.ts).
 */
import type { Objective } from "./lbfgsb.ts"

export interface LawParams {
  readonly E: number
  readonly A: number
  readonly alpha: number
  readonly B: number
  readonly beta: number
}

export interface Observation {
  /** Active parameters. */
  readonly N: number
  /** Training tokens. */
  readonly D: number
  readonly loss: number
}

export const predictLoss = (p: LawParams, N: number, D: number): number => p.E + p.A / N ** p.alpha + p.B / D ** p.beta

/** Huber loss of a residual: r^2 / 2 inside [-delta, delta], linear outside (scipy.special.huber). */
export const huber = (delta: number, r: number): number =>
  Math.abs(r) <= delta ? 0.5 * r * r : delta * (Math.abs(r) - 0.5 * delta)

/** Its derivative: the residual clipped to [-delta, delta]. */
export const huberDerivative = (delta: number, r: number): number => (r > delta ? delta : r < -delta ? -delta : r)

/**
 * How the runs' Huber losses are combined: `mean` is FLAME-MoE's (np.mean) and the unit every objective
 * is reported in; `sum` is the same function times the number of runs.
 */
export type Reduction = "mean" | "sum"

/** The raw vector is [E, A, alpha, B, beta]. */
export const rawVector = (p: LawParams): Array<number> => [p.E, p.A, p.alpha, p.B, p.beta]
export const fromRawVector = (x: ArrayLike<number>): LawParams => ({
  E: x[0]!,
  A: x[1]!,
  alpha: x[2]!,
  B: x[3]!,
  beta: x[4]!
})

/** The log vector is [e, a, alpha, b, beta] = [log E, log A, alpha, log B, beta]. */
export const logVector = (p: LawParams): Array<number> => [Math.log(p.E), Math.log(p.A), p.alpha, Math.log(p.B), p.beta]
export const fromLogVector = (x: ArrayLike<number>): LawParams => ({
  E: Math.exp(x[0]!),
  A: Math.exp(x[1]!),
  alpha: x[2]!,
  B: Math.exp(x[3]!),
  beta: x[4]!
})

/** The sum and its gradient divided by `count` (the number of runs for the mean, as np.mean divides; 1 for the sum). */
const scaled = (total: number, g: Float64Array, count: number): number => {
  if (count === 1) return total
  for (let i = 0; i < g.length; i++) g[i] = g[i]! / count
  return total / count
}

/** log N, log D and log L of each run, computed once per fit. */
interface Prepared {
  readonly logN: Float64Array
  readonly logD: Float64Array
  readonly logL: Float64Array
}

const prepare = (runs: ReadonlyArray<Observation>): Prepared => ({
  logN: Float64Array.from(runs, (r) => Math.log(r.N)),
  logD: Float64Array.from(runs, (r) => Math.log(r.D)),
  logL: Float64Array.from(runs, (r) => Math.log(r.loss))
})

/**
 * Objective over the raw parameters. Where the prediction is not positive (E < 0 far enough) the log
 * is undefined: the objective is +Infinity there, which the line search backs away from.
 */
export const rawObjective = (
  runs: ReadonlyArray<Observation>,
  delta: number,
  reduction: Reduction = "mean"
): Objective => {
  const { logD, logL, logN } = prepare(runs)
  const count = reduction === "mean" ? logN.length : 1
  return (x, g) => {
    const [E, A, alpha, B, beta] = [x[0]!, x[1]!, x[2]!, x[3]!, x[4]!]
    g.fill(0)
    let total = 0
    for (let i = 0; i < logN.length; i++) {
      const na = Math.exp(-alpha * logN[i]!)
      const db = Math.exp(-beta * logD[i]!)
      const pred = E + A * na + B * db
      if (!(pred > 0)) {
        g.fill(Number.NaN)
        return Number.POSITIVE_INFINITY
      }
      const r = Math.log(pred) - logL[i]!
      total += huber(delta, r)
      const w = huberDerivative(delta, r) / pred
      g[0] = g[0]! + w
      g[1] = g[1]! + w * na
      g[2] = g[2]! - w * A * na * logN[i]!
      g[3] = g[3]! + w * db
      g[4] = g[4]! - w * B * db * logD[i]!
    }
    return scaled(total, g, count)
  }
}

/** Objective over [log E, log A, alpha, log B, beta], log L_pred by a stable log-sum-exp. */
export const logObjective = (
  runs: ReadonlyArray<Observation>,
  delta: number,
  reduction: Reduction = "mean"
): Objective => {
  const { logD, logL, logN } = prepare(runs)
  const count = reduction === "mean" ? logN.length : 1
  return (x, g) => {
    const [e, a, alpha, b, beta] = [x[0]!, x[1]!, x[2]!, x[3]!, x[4]!]
    g.fill(0)
    let total = 0
    for (let i = 0; i < logN.length; i++) {
      const tA = a - alpha * logN[i]!
      const tB = b - beta * logD[i]!
      const top = Math.max(tA, tB, e)
      const wA = Math.exp(tA - top)
      const wB = Math.exp(tB - top)
      const wE = Math.exp(e - top)
      const sum = wA + wB + wE
      const r = top + Math.log(sum) - logL[i]!
      total += huber(delta, r)
      const h = huberDerivative(delta, r) / sum
      g[0] = g[0]! + h * wE
      g[1] = g[1]! + h * wA
      g[2] = g[2]! - h * wA * logN[i]!
      g[3] = g[3]! + h * wB
      g[4] = g[4]! - h * wB * logD[i]!
    }
    return scaled(total, g, count)
  }
}

/**
 * The objective at parameters, whichever parameterisation found them (they share the objective), in
 * FLAME-MoE's unit: the mean over runs.
 */
export const objectiveValue = (runs: ReadonlyArray<Observation>, delta: number, p: LawParams): number => {
  let total = 0
  for (const r of runs) total += huber(delta, Math.log(predictLoss(p, r.N, r.D)) - Math.log(r.loss))
  return total / runs.length
}
