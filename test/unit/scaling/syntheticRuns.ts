import { ablationGrid } from "../../../src/flame/ablationGrid.ts"
import { tokensPerIteration } from "../../../src/flame/architecture.ts"
import { denseFirstLayerFreq } from "../../../src/flame/moeLayerFreq.ts"
import { countParams } from "../../../src/flame/paramCount.ts"
import { predictLoss } from "../../../src/scaling/law.ts"
import { publishedLaw } from "../../../src/scaling/published.ts"

/** The 80 ablation runs at their published (N, D), with losses from the published law times exp(sigma * noise). */
export const syntheticRuns = (sigma: number, seed: number) => {
  let state = seed
  const uniform = () => (state = (state * 16807) % 2147483647) / 2147483647
  const normal = () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform())
  return ablationGrid.map((p) => {
    const N = countParams({ ...p, moeLayerFreq: denseFirstLayerFreq(p.numLayers) }).active
    const D = p.trainIters * tokensPerIteration()
    return { N, D, loss: predictLoss(publishedLaw, N, D) * Math.exp(sigma * normal()) }
  })
}
