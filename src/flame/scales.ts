/**
 * The seven released FLAME-MoE scales (scripts/release/flame-moe-*.sh and the model card).
 * `published` keeps the figures as printed; `paramCount.ts` and `flops.ts` recompute them from the shape.
 */
import type { ModelShape, Scale, ScaleId } from "./schema.ts"

export const scales: ReadonlyArray<Scale> = [
  {
    id: "flame-moe-38m",
    name: "FLAME-MoE-38M-100M",
    numLayers: 9,
    hiddenSize: 256,
    ffnHiddenSize: 1368,
    moeFfnHiddenSize: 176,
    moeLayerFreq: "[0]*1+[1]*8",
    microBatchSize: 32,
    trainIters: 2121,
    saveInterval: 212,
    evalInterval: 212,
    published: { activeParams: "38M", totalParams: "100M", trainingFlops: 1e+18, tokensTrained: 4.4e+09 }
  },
  {
    id: "flame-moe-98m",
    name: "FLAME-MoE-98M-349M",
    numLayers: 9,
    hiddenSize: 512,
    ffnHiddenSize: 2736,
    moeFfnHiddenSize: 352,
    moeLayerFreq: "[0]*1+[1]*8",
    microBatchSize: 32,
    trainIters: 2424,
    saveInterval: 242,
    evalInterval: 242,
    published: { activeParams: "98M", totalParams: "349M", trainingFlops: 3e+18, tokensTrained: 5e+09 }
  },
  {
    id: "flame-moe-115m",
    name: "FLAME-MoE-115M-459M",
    numLayers: 12,
    hiddenSize: 512,
    ffnHiddenSize: 2736,
    moeFfnHiddenSize: 352,
    moeLayerFreq: "[0]*1+[1]*11",
    microBatchSize: 16,
    trainIters: 4165,
    saveInterval: 416,
    evalInterval: 416,
    published: { activeParams: "115M", totalParams: "459M", trainingFlops: 6e+18, tokensTrained: 8.7e+09 }
  },
  {
    id: "flame-moe-290m",
    name: "FLAME-MoE-290M-1.3B",
    numLayers: 9,
    hiddenSize: 1024,
    ffnHiddenSize: 5472,
    moeFfnHiddenSize: 704,
    moeLayerFreq: "[0]*1+[1]*8",
    microBatchSize: 8,
    trainIters: 5473,
    saveInterval: 540,
    evalInterval: 540,
    published: { activeParams: "290M", totalParams: "1.3B", trainingFlops: 2e+19, tokensTrained: 1.14e+10 }
  },
  {
    id: "flame-moe-419m",
    name: "FLAME-MoE-419M-2.2B",
    numLayers: 15,
    hiddenSize: 1024,
    ffnHiddenSize: 5472,
    moeFfnHiddenSize: 704,
    moeLayerFreq: "[0]*1+[1]*14",
    microBatchSize: 8,
    trainIters: 5685,
    saveInterval: 568,
    evalInterval: 568,
    published: { activeParams: "419M", totalParams: "2.2B", trainingFlops: 3e+19, tokensTrained: 1.19e+10 }
  },
  {
    id: "flame-moe-721m",
    name: "FLAME-MoE-721M-3.8B",
    numLayers: 12,
    hiddenSize: 1536,
    ffnHiddenSize: 8208,
    moeFfnHiddenSize: 1056,
    moeLayerFreq: "[0]*1+[1]*11",
    microBatchSize: 8,
    trainIters: 8815,
    saveInterval: 880,
    evalInterval: 880,
    published: { activeParams: "721M", totalParams: "3.8B", trainingFlops: 8e+19, tokensTrained: 1.84e+10 }
  },
  {
    id: "flame-moe-1.7b",
    name: "FLAME-MoE-1.7B-10.3B",
    numLayers: 18,
    hiddenSize: 2048,
    ffnHiddenSize: 10944,
    moeFfnHiddenSize: 1408,
    moeLayerFreq: "[0]*1+[1]*17",
    microBatchSize: 4,
    trainIters: 11029,
    saveInterval: 1100,
    evalInterval: 1100,
    published: { activeParams: "1.7B", totalParams: "10.3B", trainingFlops: 2.4e+20, tokensTrained: 2.31e+10 }
  }
]

export const scaleIds: ReadonlyArray<ScaleId> = scales.map((s) => s.id)

export const scaleById = (id: ScaleId): Scale => {
  const scale = scales.find((s) => s.id === id)
  // ScaleId is a closed literal union over the table above, so this cannot miss.
  if (scale === undefined) throw new Error(`unknown scale ${id}`)
  return scale
}

/** The shape part of a scale (what parameter counts and FLOPs need). */
export const shapeOf = (s: ModelShape): ModelShape => ({
  numLayers: s.numLayers,
  hiddenSize: s.hiddenSize,
  ffnHiddenSize: s.ffnHiddenSize,
  moeFfnHiddenSize: s.moeFfnHiddenSize,
  moeLayerFreq: s.moeLayerFreq
})

/**
 * Parses a printed count such as "38M", "1.3B" or "10.3B" into a number, and reports how many significant
 * figures were printed (so tests can compare "to the printed precision").
 */
export const parseCountLabel = (
  label: string
): { readonly value: number; readonly decimals: number; readonly unit: number } => {
  const m = /^(\d+)(?:\.(\d+))?([KMB])$/.exec(label)
  if (m === null) throw new Error(`not a count label: ${label}`)
  const unit = m[3] === "K" ? 1e3 : m[3] === "M" ? 1e6 : 1e9
  const decimals = m[2]?.length ?? 0
  return { value: Number(`${m[1]}${m[2] === undefined ? "" : `.${m[2]}`}`) * unit, decimals, unit }
}
