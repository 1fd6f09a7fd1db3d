import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { denseFirstLayerFreq, parseMoeLayerFreq } from "../../../src/flame/moeLayerFreq.ts"

const ok = (input: string, numLayers?: number) => Either.getOrThrow(parseMoeLayerFreq(input, numLayers))
const err = (input: string, numLayers?: number) => {
  const result = parseMoeLayerFreq(input, numLayers)
  if (Either.isRight(result)) throw new Error(`expected ${input} to fail`)
  return result.left
}

describe("parseMoeLayerFreq", () => {
  it("expands FLAME-MoE's patterns", () => {
    expect(ok("[0]*1+[1]*8")).toEqual([false, true, true, true, true, true, true, true, true])
    expect(ok("[0]*1+[1]*17", 18)).toHaveLength(18)
  })

  it("accepts multi-item lists, no repeat and spaces like Python would", () => {
    expect(ok("[1,0]*2 + [1]")).toEqual([true, false, true, false, true])
    expect(ok(" [0, 1] ")).toEqual([false, true])
  })

  it("accepts Megatron's integer form given the layer count", () => {
    expect(ok("2", 5)).toEqual([true, false, true, false, true])
    expect(err("2").reason).toMatch(/number of layers/)
  })

  it("names the position of malformed input", () => {
    expect(err("[0]*1+[2]*8")).toMatchObject({ position: 7, reason: "list items must be 0 or 1" })
    expect(err("[0]*1-[1]*8")).toMatchObject({ position: 5 })
    expect(err("[0]*")).toMatchObject({ position: 4, reason: "expected a repeat count after '*'" })
    expect(err("(0)*1")).toMatchObject({ position: 0, reason: "expected '['" })
    expect(err("")).toMatchObject({ reason: "empty string" })
    expect(err("[0]*1+[1]*8", 10).message).toContain("9 layers but the model has 10")
  })

  it("round-trips the dense-first-layer string", () => {
    expect(denseFirstLayerFreq(9)).toBe("[0]*1+[1]*8")
    expect(ok(denseFirstLayerFreq(4), 4)).toEqual([false, true, true, true])
  })
})
