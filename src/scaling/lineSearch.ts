/**
 * The Moré–Thuente line search (J. J. Moré and D. J. Thuente, "Line search algorithms with guaranteed
 * sufficient decrease", ACM TOMS 20(3), 1994), the search L-BFGS-B uses: it finds a step satisfying
 * the strong Wolfe conditions
 *
 *   phi(stp) <= phi(0) + ftol * stp * phi'(0)      (sufficient decrease)
 *   |phi'(stp)| <= gtol * |phi'(0)|                (curvature)
 *
 * by safeguarded cubic / quadratic interpolation inside an interval of uncertainty that it brackets
 * first. Written from the paper's description of the algorithm.
 */

export interface LineSearchOptions {
  readonly ftol: number
  readonly gtol: number
  readonly xtol: number
  readonly stpmin: number
  readonly stpmax: number
  /** Evaluations allowed before the search is declared failed. */
  readonly maxEvaluations: number
}

export type LineSearchOutcome =
  | { readonly _tag: "Converged"; readonly stp: number; readonly evaluations: number }
  /** Ended on one of the paper's warnings (rounding, xtol, a step bound); the step is still a decrease. */
  | { readonly _tag: "Warning"; readonly stp: number; readonly evaluations: number; readonly reason: string }
  | { readonly _tag: "Failed"; readonly evaluations: number; readonly reason: string }

/** phi(stp) and phi'(stp): the objective and its directional derivative along the search direction. */
export type Phi = (stp: number) => { readonly f: number; readonly g: number }

const XTRAPL = 1.1
const XTRAPU = 4.0

interface Interval {
  stx: number
  fx: number
  gx: number
  sty: number
  fy: number
  gy: number
  brackt: boolean
}

/**
 * One step of the interval update (the paper's "dcstep"): given the best point stx, the other end sty and
 * the trial stp, choose the next trial step and update the interval. The four cases are the paper's.
 */
export const nextStep = (
  iv: Interval,
  stp: number,
  fp: number,
  dp: number,
  stpmin: number,
  stpmax: number
): number => {
  const stx = iv.stx
  const fx = iv.fx
  const dx = iv.gx
  const sgnd = dp * Math.sign(dx)
  let stpf: number
  if (fp > fx) {
    // Case 1: a higher function value; the minimum is bracketed. Cubic step if it is closer to stx, else
    // the average of the cubic and quadratic steps.
    const theta = (3 * (fx - fp)) / (stp - stx) + dx + dp
    const s = Math.max(Math.abs(theta), Math.abs(dx), Math.abs(dp))
    let gamma = s * Math.sqrt((theta / s) ** 2 - (dx / s) * (dp / s))
    if (stp < stx) gamma = -gamma
    const p = gamma - dx + theta
    const q = gamma - dx + gamma + dp
    const stpc = stx + (p / q) * (stp - stx)
    const stpq = stx + (dx / ((fx - fp) / (stp - stx) + dx) / 2) * (stp - stx)
    stpf = Math.abs(stpc - stx) < Math.abs(stpq - stx) ? stpc : stpc + (stpq - stpc) / 2
    iv.brackt = true
  } else if (sgnd < 0) {
    // Case 2: lower value, derivatives of opposite sign: bracketed; the step farther from stp.
    const theta = (3 * (fx - fp)) / (stp - stx) + dx + dp
    const s = Math.max(Math.abs(theta), Math.abs(dx), Math.abs(dp))
    let gamma = s * Math.sqrt((theta / s) ** 2 - (dx / s) * (dp / s))
    if (stp > stx) gamma = -gamma
    const p = gamma - dp + theta
    const q = gamma - dp + gamma + dx
    const stpc = stp + (p / q) * (stx - stp)
    const stpq = stp + (dp / (dp - dx)) * (stx - stp)
    stpf = Math.abs(stpc - stp) > Math.abs(stpq - stp) ? stpc : stpq
    iv.brackt = true
  } else if (Math.abs(dp) < Math.abs(dx)) {
    // Case 3: lower value, same sign, the derivative shrinks. The cubic may not have a minimiser in the
    // right direction (then it goes to the bound); safeguarded by the secant step.
    const theta = (3 * (fx - fp)) / (stp - stx) + dx + dp
    const s = Math.max(Math.abs(theta), Math.abs(dx), Math.abs(dp))
    let gamma = s * Math.sqrt(Math.max(0, (theta / s) ** 2 - (dx / s) * (dp / s)))
    if (stp > stx) gamma = -gamma
    const p = gamma - dp + theta
    const q = gamma + (dx - dp) + gamma
    const r = p / q
    const stpc = r < 0 && gamma !== 0 ? stp + r * (stx - stp) : stp > stx ? stpmax : stpmin
    const stpq = stp + (dp / (dp - dx)) * (stx - stp)
    if (iv.brackt) {
      stpf = Math.abs(stpc - stp) < Math.abs(stpq - stp) ? stpc : stpq
      stpf = stp > stx ? Math.min(stp + 0.66 * (iv.sty - stp), stpf) : Math.max(stp + 0.66 * (iv.sty - stp), stpf)
    } else {
      stpf = Math.abs(stpc - stp) > Math.abs(stpq - stp) ? stpc : stpq
      stpf = Math.max(stpmin, Math.min(stpmax, stpf))
    }
  } else {
    // Case 4: lower value, same sign, the derivative does not shrink: cubic through stp and sty when
    // bracketed, else the step bound.
    if (iv.brackt && !Number.isFinite(iv.fy)) {
      // The far end is where the objective is undefined: no cubic through it, bisect.
      stpf = stp + 0.5 * (iv.sty - stp)
    } else if (iv.brackt) {
      const theta = (3 * (fp - iv.fy)) / (iv.sty - stp) + iv.gy + dp
      const s = Math.max(Math.abs(theta), Math.abs(iv.gy), Math.abs(dp))
      let gamma = s * Math.sqrt((theta / s) ** 2 - (iv.gy / s) * (dp / s))
      if (stp > iv.sty) gamma = -gamma
      const p = gamma - dp + theta
      const q = gamma - dp + gamma + iv.gy
      stpf = stp + (p / q) * (iv.sty - stp)
    } else {
      stpf = stp > stx ? stpmax : stpmin
    }
  }
  // The new interval: stx stays the best point seen.
  if (fp > fx) {
    iv.sty = stp
    iv.fy = fp
    iv.gy = dp
  } else {
    if (sgnd < 0) {
      iv.sty = iv.stx
      iv.fy = iv.fx
      iv.gy = iv.gx
    }
    iv.stx = stp
    iv.fx = fp
    iv.gx = dp
  }
  return stpf
}

/**
 * Searches along a descent direction from phi(0) = f0, phi'(0) = g0 < 0, starting at `stp`.
 * A trial with a non-finite value (the objective is undefined there) is bisected back towards the best
 * point, which the paper does not need to consider for smooth, everywhere-defined functions.
 */
export const moreThuente = (
  phi: Phi,
  f0: number,
  g0: number,
  stp0: number,
  o: LineSearchOptions
): LineSearchOutcome => {
  if (!(g0 < 0)) return { _tag: "Failed", evaluations: 0, reason: "the search direction is not a descent direction" }
  if (!(stp0 > 0) || stp0 < o.stpmin || stp0 > o.stpmax) {
    return { _tag: "Failed", evaluations: 0, reason: `initial step ${stp0} outside [${o.stpmin}, ${o.stpmax}]` }
  }
  const gtest = o.ftol * g0
  let width = o.stpmax - o.stpmin
  let width1 = 2 * width
  const iv: Interval = { stx: 0, fx: f0, gx: g0, sty: 0, fy: f0, gy: g0, brackt: false }
  let stage = 1
  let stp = stp0
  let stmin = 0
  let stmax = stp + XTRAPU * stp
  for (let evaluations = 1; evaluations <= o.maxEvaluations; evaluations++) {
    const { f, g } = phi(stp)
    if (!Number.isFinite(f) || !Number.isFinite(g)) {
      iv.brackt = true
      iv.sty = stp
      iv.fy = Number.POSITIVE_INFINITY
      iv.gy = Number.POSITIVE_INFINITY
      stp = iv.stx + 0.5 * (stp - iv.stx)
      stmin = Math.min(iv.stx, iv.sty)
      stmax = Math.max(iv.stx, iv.sty)
      if (stmax - stmin <= o.xtol * stmax) {
        return iv.stx > 0
          ? { _tag: "Warning", stp: iv.stx, evaluations, reason: "undefined objective beyond the best step" }
          : { _tag: "Failed", evaluations, reason: "the objective is undefined along the direction" }
      }
      continue
    }
    const ftest = f0 + stp * gtest
    if (stage === 1 && f <= ftest && g >= 0) stage = 2
    if (iv.brackt && (stp <= stmin || stp >= stmax)) {
      return { _tag: "Warning", stp, evaluations, reason: "rounding errors prevent progress" }
    }
    if (iv.brackt && stmax - stmin <= o.xtol * stmax) {
      return { _tag: "Warning", stp, evaluations, reason: "xtol test satisfied" }
    }
    if (stp === o.stpmax && f <= ftest && g <= gtest) {
      return { _tag: "Warning", stp, evaluations, reason: "the step is at the upper bound stpmax" }
    }
    if (stp === o.stpmin && (f > ftest || g >= gtest)) {
      return { _tag: "Warning", stp, evaluations, reason: "the step is at the lower bound stpmin" }
    }
    if (f <= ftest && Math.abs(g) <= o.gtol * -g0) return { _tag: "Converged", stp, evaluations }

    if (stage === 1 && f <= iv.fx && f > ftest) {
      // Until a step with sufficient decrease and a non-negative derivative is found, the interval is
      // updated on the modified function psi(stp) = phi(stp) - phi(0) - ftol * stp * phi'(0).
      const m: Interval = {
        ...iv,
        fx: iv.fx - iv.stx * gtest,
        fy: iv.fy - iv.sty * gtest,
        gx: iv.gx - gtest,
        gy: iv.gy - gtest
      }
      stp = nextStep(m, stp, f - stp * gtest, g - gtest, stmin, stmax)
      iv.brackt = m.brackt
      iv.stx = m.stx
      iv.sty = m.sty
      iv.fx = m.fx + m.stx * gtest
      iv.fy = m.fy + m.sty * gtest
      iv.gx = m.gx + gtest
      iv.gy = m.gy + gtest
    } else {
      stp = nextStep(iv, stp, f, g, stmin, stmax)
    }
    // Bisect when the interval does not shrink enough.
    if (iv.brackt) {
      if (Math.abs(iv.sty - iv.stx) >= 0.66 * width1) stp = iv.stx + 0.5 * (iv.sty - iv.stx)
      width1 = width
      width = Math.abs(iv.sty - iv.stx)
    }
    if (iv.brackt) {
      stmin = Math.min(iv.stx, iv.sty)
      stmax = Math.max(iv.stx, iv.sty)
    } else {
      stmin = stp + XTRAPL * (stp - iv.stx)
      stmax = stp + XTRAPU * (stp - iv.stx)
    }
    stp = Math.max(o.stpmin, Math.min(o.stpmax, stp))
    // If no further progress is possible, the best step so far is the last trial.
    if ((iv.brackt && (stp <= stmin || stp >= stmax)) || (iv.brackt && stmax - stmin <= o.xtol * stmax)) {
      stp = iv.stx
    }
  }
  return {
    _tag: "Failed",
    evaluations: o.maxEvaluations,
    reason: `no acceptable step in ${o.maxEvaluations} evaluations`
  }
}
