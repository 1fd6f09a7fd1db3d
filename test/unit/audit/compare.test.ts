import { describe, expect, it } from "vitest"
import { compareMetrics, flattenNumbers, matchesMetric, reproducibilityOf } from "../../../src/audit/Compare.ts"
import { evaluate } from "../../../stages/eval.ts"
import { train } from "../../../stages/train.ts"

const result = (loss: number, arc: number, hella: number) => ({
  validationLoss: loss,
  tasks: { arc_easy: { acc: { value: arc, stderr: 0.01 } }, hellaswag: { acc: { value: hella, stderr: null } } }
})

describe("tolerance comparison", () => {
  it("flattens the numbers of a result by dotted path", () => {
    expect([...flattenNumbers({ a: 1, b: { c: [2, null], d: "x" }, e: null })]).toEqual([
      ["a", 1],
      ["b.c.0", 2],
      ["b.c.1", null],
      ["e", null]
    ])
  })

  it("matches * against exactly one segment", () => {
    expect(matchesMetric("tasks.*.acc.value", "tasks.arc_easy.acc.value")).toBe(true)
    expect(matchesMetric("tasks.*.acc.value", "tasks.arc_easy.acc.stderr")).toBe(false)
    expect(matchesMetric("tasks.*", "tasks.arc_easy.acc.value")).toBe(false)
  })

  it("compares each matched number against its bound, inclusively", () => {
    const out = compareMetrics(
      { validationLoss: 0.01, "tasks.*.acc.value": 0.02 },
      result(3.0, 0.5, 0.3),
      result(3.01, 0.52, 0.33)
    )
    expect(out.map((m) => [m.name, m.ok])).toEqual([
      ["validationLoss", true],
      ["tasks.arc_easy.acc.value", true],
      ["tasks.hellaswag.acc.value", false]
    ])
    expect(out[2]!.difference).toBeCloseTo(0.03, 12)
  })

  it("fails a metric the result does not have, or has on one side only", () => {
    expect(compareMetrics({ finalLoss: 1 }, { other: 1 }, { other: 1 })).toEqual([
      { name: "finalLoss", recorded: null, rebuilt: null, difference: null, bound: 1, ok: false }
    ])
    expect(compareMetrics({ x: 1 }, { x: 1 }, {})[0]!.ok).toBe(false)
    expect(compareMetrics({ x: 0 }, { x: Number.NaN }, { x: Number.NaN })[0]!.ok).toBe(true)
  })

  it("takes the class a stage declares for its params; CPU training is bitwise, GPU training is not", () => {
    const base = { scale: "s", model: {}, globalBatchSize: 1, microBatchSize: 1, trainIters: 1, saveInterval: 1 }
    expect(reproducibilityOf(train, { ...base, backend: "cpu" })).toEqual({ _tag: "bitwise" })
    const gpu = reproducibilityOf(train, { ...base, backend: "cuda" })
    expect(gpu._tag === "tolerance" && gpu.metrics.finalLoss).toBe(0.02)
    const evalGpu = reproducibilityOf(evaluate, { backend: "cuda" })
    expect(evalGpu._tag === "tolerance" && Object.keys(evalGpu.metrics)).toContain("tasks.*.acc.value")
    const { reproducibility: _declared, ...undeclared } = train
    expect(reproducibilityOf(undeclared, base)).toEqual({ _tag: "bitwise" })
  })
})
