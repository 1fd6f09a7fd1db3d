import { Either } from "effect"
import { describe, expect, it } from "vitest"
import type { Candidate } from "../../../src/audit/Selection.ts"
import { globToRegExp, selectForReexecution, stratifiedSample } from "../../../src/audit/Selection.ts"

const candidates: ReadonlyArray<Candidate> = [
  ...Array.from({ length: 10 }, (_, i) => ({ execution: `e${i}`, stage: `eval/m/${i}`, kind: "eval" })),
  ...Array.from({ length: 4 }, (_, i) => ({ execution: `t${i}`, stage: `tokenize/${i}`, kind: "tokenize/shard" })),
  { execution: "tr", stage: "train/m", kind: "train" },
  { execution: "ta", stage: "suite/table", kind: "suite/table" }
]

describe("re-execution selection", () => {
  it("samples one execution of each kind before a second of any", () => {
    for (let seed = 0; seed < 20; seed++) {
      const four = stratifiedSample(candidates, 4, seed)
      expect(new Set(four.map((c) => c.kind)).size).toBe(4)
      const six = stratifiedSample(candidates, 6, seed)
      expect(six.filter((c) => c.kind === "train")).toHaveLength(1)
      expect(six.slice(0, 4).map((c) => c.execution)).toEqual(four.map((c) => c.execution))
    }
  })

  it("is a function of the seed and the candidates, not of their order", () => {
    const a = stratifiedSample(candidates, 5, 42)
    expect(stratifiedSample([...candidates].reverse(), 5, 42)).toEqual(a)
    const seen = new Set<string>()
    for (let seed = 0; seed < 30; seed++) seen.add(stratifiedSample(candidates, 5, seed).map((c) => c.execution).join())
    expect(seen.size).toBeGreaterThan(10)
  })

  it("takes everything when asked for more than there is", () => {
    expect(stratifiedSample(candidates, 100, 1)).toHaveLength(candidates.length)
    expect(stratifiedSample(candidates, 0, 1)).toEqual([])
  })

  it("selects named stages by id or glob, then samples from the rest", () => {
    const selected = Either.getOrThrow(
      selectForReexecution(candidates, { stages: ["train/m", "tokenize/*"], sample: 2, seed: 3, all: false })
    )
    expect([...selected].filter(([, by]) => by === "stages").map(([e]) => e).sort()).toEqual(
      ["t0", "t1", "t2", "t3", "tr"]
    )
    const sampled = [...selected].filter(([, by]) => by === "sample").map(([e]) => e)
    expect(sampled).toHaveLength(2)
    expect(sampled.every((e) => e.startsWith("e") || e === "ta")).toBe(true)
  })

  it("refuses a pattern that matches nothing, naming it", () => {
    const result = selectForReexecution(candidates, { stages: ["trian/*"], sample: 0, seed: 0, all: false })
    expect(Either.isLeft(result) && result.left.message).toContain("--stages trian/*")
  })

  it("globs match across slashes and nothing else is special", () => {
    expect(globToRegExp("eval/*").test("eval/flame-moe-38m/10")).toBe(true)
    expect(globToRegExp("eval/m.1").test("eval/mx1")).toBe(false)
    expect(globToRegExp("train/(x)").test("train/(x)")).toBe(true)
  })
})
