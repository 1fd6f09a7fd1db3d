import { describe, expect, it } from "vitest"
import { checkpointSteps, intervalCheckpointSteps } from "../../../src/flame/checkpoints.ts"
import { scales } from "../../../src/flame/scales.ts"

describe("checkpointSteps", () => {
  it("lists flame-moe-1.7b's saves: 1100..11000 then 11029", () => {
    expect(checkpointSteps({ trainIters: 11029, saveInterval: 1100 })).toEqual([
      1100,
      2200,
      3300,
      4400,
      5500,
      6600,
      7700,
      8800,
      9900,
      11000,
      11029
    ])
  })

  it("does not repeat the last iteration when it is a multiple of the interval", () => {
    expect(checkpointSteps({ trainIters: 20, saveInterval: 2 })).toEqual([2, 4, 6, 8, 10, 12, 14, 16, 18, 20])
    expect(checkpointSteps({ trainIters: 3, saveInterval: 5 })).toEqual([3])
  })

  it("gives every released scale 10 interval checkpoints plus the final one", () => {
    for (const s of scales) {
      expect(intervalCheckpointSteps(s), s.id).toHaveLength(10)
      const all = checkpointSteps(s)
      expect(all, s.id).toHaveLength(11)
      expect(all.at(-1)).toBe(s.trainIters)
    }
  })

  it("rejects non-positive intervals", () => {
    expect(() => checkpointSteps({ trainIters: 10, saveInterval: 0 })).toThrow(RangeError)
  })
})
