/**
 * L-BFGS-B: limited-memory BFGS for bound-constrained minimisation (R. H. Byrd, P. Lu, J. Nocedal and
 * C. Zhu, "A limited memory algorithm for bound constrained optimization", SIAM J. Sci. Comput. 16(5),
 * 1995), with the subspace step of version 3.0 (J. L. Morales and J. Nocedal, ACM TOMS 38(1), 2011).
 * Each iteration:
 *
 *  1. the generalized Cauchy point: the first local minimiser of the quadratic model along the
 *     projected steepest-descent path x(t) = P(x - t g), walked breakpoint by breakpoint;
 *  2. subspace minimisation: the model's minimiser over the variables still free at that point,
 *     projected onto the box (falling back to the feasible part of the step when the projected
 *     point is not a descent direction);
 *  3. a Moré–Thuente line search to that point (strong Wolfe conditions);
 *  4. a BFGS update of the limited memory, skipped when the curvature s'y is not safely positive.
 *
 * The defaults, step rules and stopping tests are those of the reference implementation as scipy
 * exposes it (maxcor 10, ftol = factr * eps with factr 1e7, pgtol 1e-5, maxls 20; a first step of
 * length 1 / ||d|| when not every variable is boxed), so that fits run here and with
 * scipy.optimize.minimize(method="L-BFGS-B") are comparable.
 *
 * The quasi-Newton matrix is held densely: B = theta I updated by the m stored pairs, which is exactly
 * the compact limited-memory matrix theta I - W M W' of the paper, formed explicitly. That is O(n^2)
 * memory and O(m n^2) work per iteration: meant for problems of a handful to a few hundred variables
 * (a scaling-law fit has five), where it is simpler and no slower than the compact algebra.
 */
import { moreThuente } from "./lineSearch.ts"

/** Fills `gradient` with the gradient at x and returns the objective. */
export type Objective = (x: Float64Array, gradient: Float64Array) => number

export interface LbfgsbOptions {
  /** Per-variable bounds; -Infinity / Infinity (or absent) for none. */
  readonly lower?: ReadonlyArray<number>
  readonly upper?: ReadonlyArray<number>
  /** Stored correction pairs (scipy's maxcor). */
  readonly memory?: number
  /** Relative reduction test: stop when (f_k - f_k+1) / max(|f_k|, |f_k+1|, 1) <= factr * eps. */
  readonly factr?: number
  /** Stop when the largest component of the projected gradient is at most this. */
  readonly pgtol?: number
  readonly maxIterations?: number
  readonly maxEvaluations?: number
  /** Objective evaluations per line search. */
  readonly maxLineSearch?: number
}

export type LbfgsbStatus =
  | "converged: projected gradient <= pgtol"
  | "converged: relative reduction of f <= factr * eps"
  | "stopped: iteration limit"
  | "stopped: evaluation limit"
  | "abnormal: line search failed"
  | "abnormal: objective not finite at the start"

export interface LbfgsbResult {
  readonly x: Array<number>
  readonly f: number
  readonly gradient: Array<number>
  readonly iterations: number
  readonly evaluations: number
  readonly status: LbfgsbStatus
  readonly converged: boolean
}

export const EPSILON = 2.220446049250313e-16

/** The largest component of the projected gradient: the first-order optimality measure under bounds. */
export const projectedGradientNorm = (
  x: Float64Array,
  g: Float64Array,
  lower: Float64Array,
  upper: Float64Array
): number => {
  let norm = 0
  for (let i = 0; i < x.length; i++) {
    let gi = g[i]!
    if (gi < 0) {
      if (upper[i]! < Infinity) gi = Math.max(x[i]! - upper[i]!, gi)
    } else if (lower[i]! > -Infinity) {
      gi = Math.min(x[i]! - lower[i]!, gi)
    }
    norm = Math.max(norm, Math.abs(gi))
  }
  return norm
}

const dot = (a: Float64Array, b: Float64Array) => {
  let s = 0
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!
  return s
}

/** B v for the dense n x n matrix B (row-major). */
const times = (B: Float64Array, v: Float64Array, out = new Float64Array(v.length)) => {
  const n = v.length
  for (let i = 0; i < n; i++) {
    let s = 0
    for (let j = 0; j < n; j++) s += B[i * n + j]! * v[j]!
    out[i] = s
  }
  return out
}

/** theta I updated, oldest pair first, by the stored pairs: the limited-memory BFGS matrix. */
export const quasiNewtonMatrix = (
  n: number,
  theta: number,
  pairs: ReadonlyArray<{ readonly s: Float64Array; readonly y: Float64Array }>
): Float64Array => {
  const B = new Float64Array(n * n)
  for (let i = 0; i < n; i++) B[i * n + i] = theta
  const Bs = new Float64Array(n)
  for (const { s, y } of pairs) {
    times(B, s, Bs)
    const sBs = dot(s, Bs)
    const sy = dot(s, y)
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) B[i * n + j] = B[i * n + j]! - (Bs[i]! * Bs[j]!) / sBs + (y[i]! * y[j]!) / sy
    }
  }
  return B
}

/** Solves A x = b for a symmetric positive definite A by Cholesky; undefined when A is not (numerically) SPD. */
const solveSpd = (A: Float64Array, b: Float64Array): Float64Array | undefined => {
  const n = b.length
  const L = new Float64Array(n * n)
  for (let j = 0; j < n; j++) {
    let d = A[j * n + j]!
    for (let k = 0; k < j; k++) d -= L[j * n + k]! ** 2
    if (!(d > 0)) return undefined
    const ljj = Math.sqrt(d)
    L[j * n + j] = ljj
    for (let i = j + 1; i < n; i++) {
      let s = A[i * n + j]!
      for (let k = 0; k < j; k++) s -= L[i * n + k]! * L[j * n + k]!
      L[i * n + j] = s / ljj
    }
  }
  const y = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    let s = b[i]!
    for (let k = 0; k < i; k++) s -= L[i * n + k]! * y[k]!
    y[i] = s / L[i * n + i]!
  }
  const x = new Float64Array(n)
  for (let i = n - 1; i >= 0; i--) {
    let s = y[i]!
    for (let k = i + 1; k < n; k++) s -= L[k * n + i]! * x[k]!
    x[i] = s / L[i * n + i]!
  }
  return x
}

/**
 * The generalized Cauchy point: minimise m(x + z) = f + g'z + z'Bz/2 along the projected steepest-descent
 * path, segment by segment between the breakpoints where variables reach their bounds.
 */
export const cauchyPoint = (
  x: Float64Array,
  g: Float64Array,
  lower: Float64Array,
  upper: Float64Array,
  B: Float64Array
): Float64Array => {
  const n = x.length
  const breakpoint = new Float64Array(n)
  const d = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    const gi = g[i]!
    const t = gi < 0 ?
      (upper[i]! < Infinity ? (x[i]! - upper[i]!) / gi : Infinity)
      : gi > 0 ?
      (lower[i]! > -Infinity ? (x[i]! - lower[i]!) / gi : Infinity)
      : Infinity
    breakpoint[i] = t
    d[i] = t > 0 ? -gi : 0
  }
  const order = Array.from({ length: n }, (_, i) => i)
    .filter((i) => breakpoint[i]! > 0 && breakpoint[i]! < Infinity)
    .sort((a, b) => breakpoint[a]! - breakpoint[b]! || a - b)
  const z = new Float64Array(n)
  const Bd = times(B, d)
  let f1 = -dot(d, d)
  let f2 = dot(d, Bd)
  let dtMin = f2 > 0 ? -f1 / f2 : Infinity
  let tOld = 0
  for (const b of order) {
    const dt = breakpoint[b]! - tOld
    if (dtMin < dt) break
    for (let i = 0; i < n; i++) z[i] = z[i]! + dt * d[i]!
    z[b] = (d[b]! > 0 ? upper[b]! : lower[b]!) - x[b]!
    d[b] = 0
    tOld = breakpoint[b]!
    if (d.every((v) => v === 0)) {
      dtMin = 0
      break
    }
    const Bz = times(B, z)
    times(B, d, Bd)
    f1 = dot(g, d) + dot(d, Bz)
    f2 = dot(d, Bd)
    if (f1 >= 0) {
      dtMin = 0
      break
    }
    dtMin = f2 > 0 ? -f1 / f2 : Infinity
  }
  if (!Number.isFinite(dtMin)) dtMin = 0
  dtMin = Math.max(dtMin, 0)
  const xc = new Float64Array(n)
  for (let i = 0; i < n; i++) xc[i] = Math.min(upper[i]!, Math.max(lower[i]!, x[i]! + z[i]! + dtMin * d[i]!))
  return xc
}

/**
 * Minimises the model over the variables free at the Cauchy point (the others stay at their bounds):
 * du = -(Z'BZ)^-1 Z'(g + B(xc - x)). Version 3.0 projects xc + du onto the box and keeps that when it is
 * a descent direction from x; otherwise the step is cut back to stay feasible.
 */
export const subspaceStep = (
  x: Float64Array,
  g: Float64Array,
  xc: Float64Array,
  lower: Float64Array,
  upper: Float64Array,
  B: Float64Array
): Float64Array => {
  const n = x.length
  const free = Array.from({ length: n }, (_, i) => i).filter((i) => xc[i]! > lower[i]! && xc[i]! < upper[i]!)
  if (free.length === 0) return xc
  const dx = new Float64Array(n)
  for (let i = 0; i < n; i++) dx[i] = xc[i]! - x[i]!
  const r = times(B, dx)
  const nf = free.length
  const Bff = new Float64Array(nf * nf)
  const rhs = new Float64Array(nf)
  free.forEach((i, a) => {
    rhs[a] = -(g[i]! + r[i]!)
    free.forEach((j, b) => (Bff[a * nf + b] = B[i * n + j]!))
  })
  const du = solveSpd(Bff, rhs)
  if (du === undefined) return xc
  const projected = xc.slice()
  free.forEach((i, a) => (projected[i] = Math.min(upper[i]!, Math.max(lower[i]!, xc[i]! + du[a]!))))
  let slope = 0
  for (let i = 0; i < n; i++) slope += (projected[i]! - x[i]!) * g[i]!
  if (slope <= 0) return projected
  let alpha = 1
  free.forEach((i, a) => {
    const step = du[a]!
    if (step < 0 && lower[i]! > -Infinity) alpha = Math.min(alpha, Math.max(0, (lower[i]! - xc[i]!) / step))
    if (step > 0 && upper[i]! < Infinity) alpha = Math.min(alpha, Math.max(0, (upper[i]! - xc[i]!) / step))
  })
  const cut = xc.slice()
  free.forEach((i, a) => (cut[i] = xc[i]! + alpha * du[a]!))
  return cut
}

export const minimize = (
  objective: Objective,
  x0: ReadonlyArray<number>,
  options: LbfgsbOptions = {}
): LbfgsbResult => {
  const n = x0.length
  const m = options.memory ?? 10
  const tol = (options.factr ?? 1e7) * EPSILON
  const pgtol = options.pgtol ?? 1e-5
  const maxIterations = options.maxIterations ?? 15000
  const maxEvaluations = options.maxEvaluations ?? 15000
  const maxLineSearch = options.maxLineSearch ?? 20
  const lower = Float64Array.from({ length: n }, (_, i) => options.lower?.[i] ?? -Infinity)
  const upper = Float64Array.from({ length: n }, (_, i) => options.upper?.[i] ?? Infinity)
  for (let i = 0; i < n; i++) {
    if (lower[i]! > upper[i]!) {
      throw new Error(`L-BFGS-B: variable ${i} has lower bound ${lower[i]} > upper ${upper[i]}`)
    }
  }
  const constrained = lower.some((l) => l > -Infinity) || upper.some((u) => u < Infinity)
  const boxed = lower.every((l) => l > -Infinity) && upper.every((u) => u < Infinity)

  let x: Float64Array = Float64Array.from(x0, (v, i) => Math.min(upper[i]!, Math.max(lower[i]!, v)))
  let g: Float64Array = new Float64Array(n)
  let f = objective(x, g)
  let evaluations = 1
  let iterations = 0
  const done = (status: LbfgsbStatus): LbfgsbResult => ({
    x: Array.from(x),
    f,
    gradient: Array.from(g),
    iterations,
    evaluations,
    status,
    converged: status.startsWith("converged")
  })
  if (!Number.isFinite(f) || g.some((v) => !Number.isFinite(v))) {
    return done("abnormal: objective not finite at the start")
  }
  if (projectedGradientNorm(x, g, lower, upper) <= pgtol) return done("converged: projected gradient <= pgtol")

  let pairs: Array<{ s: Float64Array; y: Float64Array }> = []
  let theta = 1
  for (;;) {
    const B = quasiNewtonMatrix(n, theta, pairs)
    // Without bounds and with a memory the Cauchy point adds nothing: go straight to the quasi-Newton step.
    const xc = !constrained && pairs.length > 0 ? x : cauchyPoint(x, g, lower, upper, B)
    const target = pairs.length > 0 ? subspaceStep(x, g, xc, lower, upper, B) : xc
    const d = new Float64Array(n)
    for (let i = 0; i < n; i++) d[i] = target[i]! - x[i]!
    const slope = dot(g, d)

    let stpmax = 1e10
    if (constrained) {
      if (iterations === 0) {
        stpmax = 1
      } else {
        for (let i = 0; i < n; i++) {
          if (d[i]! < 0 && lower[i]! > -Infinity) stpmax = Math.min(stpmax, Math.max(0, (lower[i]! - x[i]!) / d[i]!))
          if (d[i]! > 0 && upper[i]! < Infinity) stpmax = Math.min(stpmax, Math.max(0, (upper[i]! - x[i]!) / d[i]!))
        }
      }
    }
    const dnorm = Math.sqrt(dot(d, d))
    const stp0 = iterations === 0 && !boxed ? Math.min(1 / dnorm, stpmax) : 1

    // Trials are kept by step so that the accepted one need not be evaluated again.
    const trials = new Map<number, { x: Float64Array; f: number; g: Float64Array }>()
    let lastStp = Number.NaN
    const phi = (stp: number) => {
      // A trial at the point evaluated last is not evaluated again (scipy's function cache holds that one
      // point too; a return to an earlier step, e.g. the best one once the interval has closed, is).
      const seen = trials.get(stp)
      if (seen !== undefined && stp === lastStp) {
        return { f: seen.f, g: Number.isFinite(seen.f) ? dot(seen.g, d) : Number.NaN }
      }
      lastStp = stp
      const xt = new Float64Array(n)
      for (let i = 0; i < n; i++) {
        xt[i] = stp === 1 ? target[i]! : Math.min(upper[i]!, Math.max(lower[i]!, x[i]! + stp * d[i]!))
      }
      const gt = new Float64Array(n)
      const ft = objective(xt, gt)
      evaluations++
      trials.set(stp, { x: xt, f: ft, g: gt })
      return { f: ft, g: Number.isFinite(ft) ? dot(gt, d) : Number.NaN }
    }
    const search = slope < 0 && dnorm > 0 && stpmax > 0
      ? moreThuente(phi, f, slope, Math.min(stp0, stpmax), {
        ftol: 1e-3,
        gtol: 0.9,
        xtol: 0.1,
        stpmin: 0,
        stpmax,
        maxEvaluations: Math.min(maxLineSearch, Math.max(1, maxEvaluations - evaluations))
      })
      : ({ _tag: "Failed", evaluations: 0, reason: "not a descent direction" } as const)
    const stp = search._tag === "Failed" ? Number.NaN : search.stp
    const accepted = trials.get(stp)
    if (accepted === undefined) {
      // As the reference: forget the memory and retry from steepest descent; fail when that fails too.
      if (pairs.length === 0) return done("abnormal: line search failed")
      pairs = []
      theta = 1
      if (evaluations >= maxEvaluations) return done("stopped: evaluation limit")
      continue
    }
    const fOld = f
    const s = new Float64Array(n)
    const y = new Float64Array(n)
    for (let i = 0; i < n; i++) {
      s[i] = accepted.x[i]! - x[i]!
      y[i] = accepted.g[i]! - g[i]!
    }
    x = accepted.x
    g = accepted.g
    f = accepted.f
    iterations++

    if (projectedGradientNorm(x, g, lower, upper) <= pgtol) return done("converged: projected gradient <= pgtol")
    if (fOld - f <= tol * Math.max(Math.abs(fOld), Math.abs(f), 1)) {
      return done("converged: relative reduction of f <= factr * eps")
    }
    const sy = dot(s, y)
    if (sy > EPSILON * -slope * stp) {
      pairs.push({ s, y })
      if (pairs.length > m) pairs.shift()
      theta = dot(y, y) / sy
    }
    if (iterations >= maxIterations) return done("stopped: iteration limit")
    if (evaluations >= maxEvaluations) return done("stopped: evaluation limit")
  }
}
