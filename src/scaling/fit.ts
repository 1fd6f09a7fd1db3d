/**
 * Fitting L(N, D) as FLAME-MoE did (facts: scalingLaw.fit): L-BFGS-B from every point of a grid of
 * initial guesses, keeping the fit with the lowest objective. The grid's ranges are FLAME-MoE's
 * (E in e^-1..e^1, A and B in e^0..e^25, alpha and beta in 0..2); the steps are Hoffmann et al.'s
 * (0.5 for log E, alpha and beta; 5 for log A and log B), which is what puts the published A = e^5 and
 * B = e^15 on the grid. Deterministic: starts run in grid order and a later start replaces the best only
 * when strictly better.
 */
import type { LawParams, Observation } from "./law.ts"
import { fromLogVector, fromRawVector, logObjective, logVector, rawObjective, rawVector } from "./law.ts"
import type { LbfgsbOptions, LbfgsbStatus } from "./lbfgsb.ts"
import { minimize } from "./lbfgsb.ts"

export interface InitialGrid {
  readonly logE: ReadonlyArray<number>
  readonly logA: ReadonlyArray<number>
  readonly alpha: ReadonlyArray<number>
  readonly logB: ReadonlyArray<number>
  readonly beta: ReadonlyArray<number>
}

const steps = (from: number, to: number, step: number) =>
  Array.from({ length: Math.round((to - from) / step) + 1 }, (_, i) => from + i * step)

export const flameInitialGrid: InitialGrid = {
  logE: steps(-1, 1, 0.5),
  logA: steps(0, 25, 5),
  alpha: steps(0, 2, 0.5),
  logB: steps(0, 25, 5),
  beta: steps(0, 2, 0.5)
}

/**
 * `raw`: L-BFGS-B over (E, A, alpha, B, beta), as FLAME-MoE ran it (for reproducing the paper);
 * `log`: over (log E, log A, alpha, log B, beta), well conditioned (Hoffmann et al.).
 */
export type FitMethod = "raw" | "log"

export interface FitOptions {
  readonly method: FitMethod
  readonly delta?: number
  readonly grid?: InitialGrid
  readonly optimizer?: LbfgsbOptions
}

export interface FitResult {
  readonly method: FitMethod
  readonly params: LawParams
  /** Sum of Huber(log L_pred - log L_obs) at `params`. */
  readonly objective: number
  readonly delta: number
  /** The grid point the best fit started from. */
  readonly start: LawParams
  readonly iterations: number
  readonly evaluations: number
  readonly status: LbfgsbStatus
  readonly startsTried: number
  /** Starts whose optimisation ended on a convergence test (the others hit a limit or a line-search failure). */
  readonly startsConverged: number
  readonly startsFailed: number
}

export const gridStarts = (grid: InitialGrid): Array<LawParams> => {
  const out: Array<LawParams> = []
  for (const e of grid.logE) {
    for (const a of grid.logA) {
      for (const alpha of grid.alpha) {
        for (const b of grid.logB) {
          for (const beta of grid.beta) out.push({ E: Math.exp(e), A: Math.exp(a), alpha, B: Math.exp(b), beta })
        }
      }
    }
  }
  return out
}

export const fitScalingLaw = (runs: ReadonlyArray<Observation>, options: FitOptions): FitResult => {
  if (runs.length === 0) throw new Error("scaling-law fit: no runs")
  for (const [i, r] of runs.entries()) {
    if (!(r.N > 0 && r.D > 0 && r.loss > 0) || ![r.N, r.D, r.loss].every(Number.isFinite)) {
      throw new Error(`scaling-law fit: run ${i} has N=${r.N}, D=${r.D}, loss=${r.loss}; all must be finite and > 0`)
    }
  }
  const delta = options.delta ?? 1e-3
  const raw = options.method === "raw"
  const objective = raw ? rawObjective(runs, delta) : logObjective(runs, delta)
  const toVector = raw ? rawVector : logVector
  const fromVector = raw ? fromRawVector : fromLogVector
  let best: {
    params: LawParams
    objective: number
    start: LawParams
    iterations: number
    evaluations: number
    status: LbfgsbStatus
  } | undefined
  let converged = 0
  let failed = 0
  const starts = gridStarts(options.grid ?? flameInitialGrid)
  for (const start of starts) {
    const result = minimize(objective, toVector(start), options.optimizer)
    if (result.converged) converged++
    else if (result.status.startsWith("abnormal")) failed++
    if (Number.isFinite(result.f) && (best === undefined || result.f < best.objective)) {
      best = {
        params: fromVector(result.x),
        objective: result.f,
        start,
        iterations: result.iterations,
        evaluations: result.evaluations,
        status: result.status
      }
    }
  }
  if (best === undefined) throw new Error("scaling-law fit: no start reached a finite objective")
  return {
    method: options.method,
    delta,
    ...best,
    startsTried: starts.length,
    startsConverged: converged,
    startsFailed: failed
  }
}
