import { Schema } from "effect"
import { describe, expect, it } from "vitest"
import { ablationBudgets, ablationGrid, ablationShapes } from "../../../src/flame/ablationGrid.ts"
import { scaleById } from "../../../src/flame/scales.ts"
import { AblationPoint } from "../../../src/flame/schema.ts"

const key = (p: { hiddenSize: number; numLayers: number }) => `${p.hiddenSize}x${p.numLayers}`

describe("ablationGrid", () => {
  it("has 16 shapes x 5 budgets = 80 valid points", () => {
    expect(ablationGrid).toHaveLength(80)
    expect(ablationBudgets).toEqual([1e18, 3e18, 6e18, 1e19, 3e19])
    expect(new Set(ablationShapes.map(key)).size).toBe(16)
    for (const p of ablationGrid) expect(() => Schema.decodeUnknownSync(AblationPoint)(p)).not.toThrow()
    for (const b of ablationBudgets) expect(ablationGrid.filter((p) => p.flopsBudget === b)).toHaveLength(16)
  })

  it("matches the published grid at spot checks and in total", () => {
    // Sum of all 80 trainIters and two entries, copied from the published grid.
    expect(ablationGrid.reduce((sum, p) => sum + p.trainIters, 0)).toBe(463288)
    expect(ablationGrid[37]).toEqual({
      hiddenSize: 768,
      ffnHiddenSize: 4104,
      moeFfnHiddenSize: 528,
      numLayers: 9,
      microBatchSize: 16,
      expertParallel: 8,
      trainIters: 2611,
      flopsBudget: 6e18
    })
    expect(ablationGrid[79]).toMatchObject({ hiddenSize: 2048, numLayers: 18, microBatchSize: 1, trainIters: 1379 })
  })

  it("scales trainIters with the budget (within rounding)", () => {
    for (const shape of ablationShapes) {
      const runs = ablationGrid.filter((p) => key(p) === key(shape))
      const base = runs[0]!
      for (const run of runs) {
        const expected = base.trainIters * run.flopsBudget / base.flopsBudget
        expect(Math.abs(run.trainIters / expected - 1), key(shape)).toBeLessThan(0.03)
      }
    }
  })

  it("contains four of the released runs", () => {
    const find = (id: Parameters<typeof scaleById>[0], budget: number) => {
      const s = scaleById(id)
      return ablationGrid.find((p) => key(p) === key(s) && p.flopsBudget === budget)?.trainIters
    }
    expect(find("flame-moe-38m", 1e18)).toBe(2121)
    expect(find("flame-moe-98m", 3e18)).toBe(2424)
    expect(find("flame-moe-115m", 6e18)).toBe(4165)
    expect(find("flame-moe-419m", 3e19)).toBe(5685)
  })
})
