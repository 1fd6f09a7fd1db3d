/**
 * The scaling-law ablation of FLAME-MoE (scripts/ablation/search.sh): 16 model shapes, each trained for five
 * FLOPs budgets, 80 runs. Stored as one row per shape with its five trainIters (budget order below), which is
 * how the script enumerates them; `ablationGrid` flattens it to the 80 points budget by budget, the order the
 * published grid lists them in. Expert parallelism is 8 for every run.
 */
import type { AblationPoint } from "./schema.ts"

export const ablationBudgets: ReadonlyArray<number> = [1e18, 3e18, 6e18, 1e19, 3e19]

interface ShapeRow {
  readonly hiddenSize: number
  readonly ffnHiddenSize: number
  readonly moeFfnHiddenSize: number
  readonly numLayers: number
  readonly microBatchSize: number
  /** trainIters for each budget of `ablationBudgets`, in that order. */
  readonly trainIters: readonly [number, number, number, number, number]
}

const shapeRows: ReadonlyArray<ShapeRow> = [
  {
    hiddenSize: 256,
    ffnHiddenSize: 1368,
    moeFfnHiddenSize: 176,
    numLayers: 6,
    microBatchSize: 32,
    trainIters: [2377, 7130, 14260, 23767, 71300]
  },
  {
    hiddenSize: 768,
    ffnHiddenSize: 4104,
    moeFfnHiddenSize: 528,
    numLayers: 6,
    microBatchSize: 16,
    trainIters: [543, 1629, 3258, 5429, 16286]
  },
  {
    hiddenSize: 512,
    ffnHiddenSize: 2736,
    moeFfnHiddenSize: 352,
    numLayers: 6,
    microBatchSize: 32,
    trainIters: [967, 2900, 5799, 9664, 28992]
  },
  {
    hiddenSize: 512,
    ffnHiddenSize: 2736,
    moeFfnHiddenSize: 352,
    numLayers: 9,
    microBatchSize: 32,
    trainIters: [808, 2424, 4848, 8080, 24239]
  },
  {
    hiddenSize: 256,
    ffnHiddenSize: 1368,
    moeFfnHiddenSize: 176,
    numLayers: 9,
    microBatchSize: 32,
    trainIters: [2121, 6363, 12726, 21210, 63628]
  },
  {
    hiddenSize: 768,
    ffnHiddenSize: 4104,
    moeFfnHiddenSize: 528,
    numLayers: 9,
    microBatchSize: 16,
    trainIters: [436, 1306, 2611, 4351, 13052]
  },
  {
    hiddenSize: 1536,
    ffnHiddenSize: 8208,
    moeFfnHiddenSize: 1056,
    numLayers: 12,
    microBatchSize: 4,
    trainIters: [111, 331, 662, 1102, 3306]
  },
  {
    hiddenSize: 1024,
    ffnHiddenSize: 5472,
    moeFfnHiddenSize: 704,
    numLayers: 12,
    microBatchSize: 8,
    trainIters: [224, 672, 1344, 2240, 6718]
  },
  {
    hiddenSize: 768,
    ffnHiddenSize: 4104,
    moeFfnHiddenSize: 528,
    numLayers: 12,
    microBatchSize: 16,
    trainIters: [363, 1089, 2178, 3630, 10889]
  },
  {
    hiddenSize: 512,
    ffnHiddenSize: 2736,
    moeFfnHiddenSize: 352,
    numLayers: 12,
    microBatchSize: 16,
    trainIters: [695, 2083, 4165, 6942, 20825]
  },
  {
    hiddenSize: 1024,
    ffnHiddenSize: 5472,
    moeFfnHiddenSize: 704,
    numLayers: 15,
    microBatchSize: 8,
    trainIters: [190, 569, 1137, 1895, 5685]
  },
  {
    hiddenSize: 2048,
    ffnHiddenSize: 10944,
    moeFfnHiddenSize: 1408,
    numLayers: 15,
    microBatchSize: 1,
    trainIters: [55, 163, 325, 541, 1621]
  },
  {
    hiddenSize: 1536,
    ffnHiddenSize: 8208,
    moeFfnHiddenSize: 1056,
    numLayers: 15,
    microBatchSize: 4,
    trainIters: [92, 276, 551, 918, 2752]
  },
  {
    hiddenSize: 1536,
    ffnHiddenSize: 8208,
    moeFfnHiddenSize: 1056,
    numLayers: 18,
    microBatchSize: 4,
    trainIters: [79, 236, 472, 786, 2358]
  },
  {
    hiddenSize: 1024,
    ffnHiddenSize: 5472,
    moeFfnHiddenSize: 704,
    numLayers: 18,
    microBatchSize: 8,
    trainIters: [165, 493, 986, 1643, 4928]
  },
  {
    hiddenSize: 2048,
    ffnHiddenSize: 10944,
    moeFfnHiddenSize: 1408,
    numLayers: 18,
    microBatchSize: 1,
    trainIters: [46, 138, 276, 460, 1379]
  }
]

const expertParallel = 8

export const ablationShapes: ReadonlyArray<Omit<ShapeRow, "trainIters">> = shapeRows.map(
  ({ trainIters: _, ...shape }) => shape
)

export const ablationGrid: ReadonlyArray<AblationPoint> = ablationBudgets.flatMap((flopsBudget, b) =>
  shapeRows.map((row) => ({
    hiddenSize: row.hiddenSize,
    ffnHiddenSize: row.ffnHiddenSize,
    moeFfnHiddenSize: row.moeFfnHiddenSize,
    numLayers: row.numLayers,
    microBatchSize: row.microBatchSize,
    expertParallel,
    trainIters: row.trainIters[b] as number,
    flopsBudget
  }))
)
