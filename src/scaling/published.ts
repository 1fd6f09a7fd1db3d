/**
 * FLAME-MoE's published scaling-law fit (facts: scalingLaw.published), carried here so reports can draw it
 * next to a refit. A = 148.413257 and B = 3269017.372472 are e^5 and e^15: two points of the grid of
 * initial guesses that L-BFGS-B on the raw parameters did not move: on the notebook's mean objective its
 * absolute stopping tests fire first (see fit.ts).
 */
import type { LawParams } from "./law.ts"

export const publishedLaw: LawParams = {
  E: 2.241716,
  A: 148.413257,
  alpha: 0.279702,
  B: 3269017.372472,
  beta: 0.7155
}
