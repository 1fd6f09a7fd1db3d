/**
 * What a fitted law says about allocating compute C = 6 N D (Hoffmann et al. 2022, appendix D.2):
 * minimising L(N, C / (6N)) over N gives
 *
 *   N*(C) = G (C/6)^(beta / (alpha + beta)),   D*(C) = G^-1 (C/6)^(alpha / (alpha + beta)),
 *   G = (alpha A / (beta B))^(1 / (alpha + beta)),
 *
 * and an iso-FLOP curve is L(N, C / (6N)) over N at fixed C.
 */
import type { LawParams } from "./law.ts"
import { predictLoss } from "./law.ts"

export interface ComputeOptimal {
  readonly flops: number
  readonly activeParams: number
  readonly tokens: number
  readonly loss: number
}

export const computeOptimal = (p: LawParams, flops: number): ComputeOptimal => {
  if (!(p.alpha > 0 && p.beta > 0 && p.A > 0 && p.B > 0)) {
    // With alpha or beta at 0 (or a non-positive A, B) the loss is monotone in N: no interior optimum.
    return { flops, activeParams: Number.NaN, tokens: Number.NaN, loss: Number.NaN }
  }
  const G = ((p.alpha * p.A) / (p.beta * p.B)) ** (1 / (p.alpha + p.beta))
  const activeParams = G * (flops / 6) ** (p.beta / (p.alpha + p.beta))
  const tokens = flops / (6 * activeParams)
  return { flops, activeParams, tokens, loss: predictLoss(p, activeParams, tokens) }
}

export interface IsoFlopCurve {
  readonly flops: number
  readonly points: ReadonlyArray<{ readonly activeParams: number; readonly tokens: number; readonly loss: number }>
}

/** L along N from `minN` to `maxN` (log-spaced, `count` points) at fixed compute. */
export const isoFlopCurve = (p: LawParams, flops: number, minN: number, maxN: number, count = 61): IsoFlopCurve => ({
  flops,
  points: Array.from({ length: count }, (_, i) => {
    const activeParams = minN * (maxN / minN) ** (count === 1 ? 0 : i / (count - 1))
    const tokens = flops / (6 * activeParams)
    return { activeParams, tokens, loss: predictLoss(p, activeParams, tokens) }
  })
})
