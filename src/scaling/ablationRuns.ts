/**
 * The runs of the scaling-law ablation as the `ablation` pipeline trains them: the 80 points of the
 * published grid (src/flame/ablationGrid.ts) at their published size, or shrunk for the `tiny` preset.
 *
 * The tiny shrink follows the suite's tiny preset (dimensions, layers and iterations divided by
 * constants, the bundled tokenizer's vocabulary, short sequences and batches), pushed further so that
 * all 80 trainings and validations take a couple of minutes on 2 cores:
 * - hidden sizes / 32 (256..2048 -> 8..64) with 4 attention heads, so each head keeps an even
 *   dimension for RoPE and every published width stays distinct; ffn and moeFfn keep each shape's
 *   published ratio to the hidden size;
 * - layers / 3 rounded up (6..18 -> 2..6, one dense layer then MoE layers), again all distinct;
 * - 64 experts, top-6 and a shared expert twice as wide, as published;
 * - iterations / 23, at least 1: the smallest published run (46 iterations) gets 2, and every shape
 *   keeps its five budgets' iteration ratios up to rounding;
 * - 32-token sequences in batches of 4, the suite's 10x learning rates.
 */
import { ablationGrid } from "../flame/ablationGrid.ts"
import { architecture, training } from "../flame/architecture.ts"
import { denseFirstLayerFreq } from "../flame/moeLayerFreq.ts"
import type { AblationPoint } from "../flame/schema.ts"

export interface AblationRun {
  /** Stage-id friendly: d<published hidden>-l<published layers>-<budget>, plus the preset's suffix. */
  readonly id: string
  /** The published shape it stands for, e.g. "d512-l9". */
  readonly shape: string
  readonly flopsBudget: number
  readonly hiddenSize: number
  readonly ffnHiddenSize: number
  readonly moeFfnHiddenSize: number
  readonly numLayers: number
  readonly moeLayerFreq: string
  readonly numAttentionHeads: number
  readonly numExperts: number
  readonly routerTopK: number
  readonly sharedExpertSize: number
  readonly paddedVocabSize: number
  readonly seqLength: number
  readonly globalBatchSize: number
  readonly microBatchSize: number
  readonly trainIters: number
  readonly lr: number
  readonly minLr: number
}

export interface TinyAblationOptions {
  readonly hiddenDivisor: number
  readonly numAttentionHeads: number
  readonly layerDivisor: number
  readonly minLayers: number
  readonly iterDivisor: number
  readonly seqLength: number
  readonly globalBatchSize: number
  readonly microBatchSize: number
  /** len(tokenizer) of the bundled tokenizer. */
  readonly vocabSize: number
  readonly vocabDivisibleBy: number
  readonly lrFactor: number
  readonly idSuffix: string
}

export const defaultTinyAblationOptions: TinyAblationOptions = {
  hiddenDivisor: 32,
  numAttentionHeads: 4,
  layerDivisor: 3,
  minLayers: 2,
  iterDivisor: 23,
  seqLength: 32,
  globalBatchSize: 4,
  microBatchSize: 4,
  vocabSize: 2560,
  vocabDivisibleBy: 128,
  lrFactor: 10,
  idSuffix: "-tiny"
}

/** "1e18" / "3e19": budgets as they are written in the grid. */
export const budgetLabel = (flops: number): string => {
  const exponent = Math.floor(Math.log10(flops) + 1e-9)
  const mantissa = Math.round(flops / 10 ** exponent)
  return `${mantissa}e${exponent}`
}

export const shapeId = (p: Pick<AblationPoint, "hiddenSize" | "numLayers">): string =>
  `d${p.hiddenSize}-l${p.numLayers}`

const roundUpTo = (x: number, multiple: number) => Math.ceil(x / multiple) * multiple

export const publishedAblationRuns = (): ReadonlyArray<AblationRun> =>
  ablationGrid.map((p) => ({
    id: `${shapeId(p)}-${budgetLabel(p.flopsBudget)}`,
    shape: shapeId(p),
    flopsBudget: p.flopsBudget,
    hiddenSize: p.hiddenSize,
    ffnHiddenSize: p.ffnHiddenSize,
    moeFfnHiddenSize: p.moeFfnHiddenSize,
    numLayers: p.numLayers,
    moeLayerFreq: denseFirstLayerFreq(p.numLayers),
    numAttentionHeads: architecture.numAttentionHeads,
    numExperts: architecture.numExperts,
    routerTopK: architecture.routerTopK,
    sharedExpertSize: architecture.sharedExpertWidthFactor * p.moeFfnHiddenSize,
    paddedVocabSize: architecture.paddedVocabSize,
    seqLength: training.seqLength,
    globalBatchSize: training.globalBatchSize,
    microBatchSize: p.microBatchSize,
    trainIters: p.trainIters,
    lr: training.lr,
    minLr: training.minLr
  }))

export const tinyAblationRun = (
  p: AblationPoint,
  o: TinyAblationOptions = defaultTinyAblationOptions
): AblationRun => {
  const hiddenSize = Math.max(
    2 * o.numAttentionHeads,
    roundUpTo(p.hiddenSize / o.hiddenDivisor, 2 * o.numAttentionHeads)
  )
  const moeFfnHiddenSize = Math.max(1, Math.round((hiddenSize * p.moeFfnHiddenSize) / p.hiddenSize))
  const numLayers = Math.max(o.minLayers, Math.ceil(p.numLayers / o.layerDivisor))
  return {
    id: `${shapeId(p)}-${budgetLabel(p.flopsBudget)}${o.idSuffix}`,
    shape: shapeId(p),
    flopsBudget: p.flopsBudget,
    hiddenSize,
    ffnHiddenSize: Math.max(2, Math.round((hiddenSize * p.ffnHiddenSize) / p.hiddenSize / 2) * 2),
    moeFfnHiddenSize,
    numLayers,
    moeLayerFreq: denseFirstLayerFreq(numLayers),
    numAttentionHeads: o.numAttentionHeads,
    numExperts: architecture.numExperts,
    routerTopK: architecture.routerTopK,
    sharedExpertSize: architecture.sharedExpertWidthFactor * moeFfnHiddenSize,
    paddedVocabSize: roundUpTo(o.vocabSize, o.vocabDivisibleBy),
    seqLength: o.seqLength,
    globalBatchSize: o.globalBatchSize,
    microBatchSize: Math.min(o.microBatchSize, o.globalBatchSize),
    trainIters: Math.max(1, Math.round(p.trainIters / o.iterDivisor)),
    lr: o.lrFactor * training.lr,
    minLr: o.lrFactor * training.minLr
  }
}

export const tinyAblationRuns = (o: TinyAblationOptions = defaultTinyAblationOptions): ReadonlyArray<AblationRun> =>
  ablationGrid.map((p) => tinyAblationRun(p, o))
