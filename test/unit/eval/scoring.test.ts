import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { buildTaskRequests } from "../../../src/eval/requests.ts"
import { argmax, meanWithStderr, scoreDoc, scoreTask } from "../../../src/eval/scoring.ts"
import { type ChoicesDoc, openBookQa, winogrande } from "../../../src/eval/tasks.ts"
import { byteEncoder, fixtureDocs } from "./support.ts"

const choices = (texts: Array<string>, gold: number): ChoicesDoc => ({
  _tag: "Choices",
  query: "Q",
  choices: texts,
  gold
})

describe("scoreDoc", () => {
  it("acc takes the largest sum; acc_norm divides by the choice's length in characters", () => {
    // Sums: "a cat" (5 chars) -3.0 -> -0.6 per char; "an elephant" (11 chars) -4.4 -> -0.4 per char.
    const doc = choices(["a cat", "an elephant"], 1)
    expect(scoreDoc(doc, [-3.0, -4.4])).toEqual({ acc: 0, accNorm: 1 })
    expect(scoreDoc({ ...doc, gold: 0 }, [-3.0, -4.4])).toEqual({ acc: 1, accNorm: 0 })
  })

  it("normalises by the choice without the leading space delimiter", () => {
    // Lengths 1 and 3 (the harness): -0.55 / 1 = -0.55 < -1.5 / 3 = -0.5, so choice 1 (the gold).
    // Had the " " been counted (lengths 2 and 4): -0.275 > -0.375, choice 0.
    expect(scoreDoc(choices(["a", "bcd"], 1), [-0.55, -1.5])).toEqual({ acc: 0, accNorm: 1 })
  })

  it("counts code points, like Python's len", () => {
    // "😀😀" is 2 characters (4 UTF-16 units): -1/2 = -0.5 beats "abc" -1.6/3 = -0.533.
    expect(scoreDoc(choices(["😀😀", "abc"], 0), [-1, -1.6]).accNorm).toBe(1)
  })

  it("breaks ties on the first maximum, like numpy.argmax", () => {
    expect(argmax([-1, -0.5, -0.5])).toBe(1)
    expect(scoreDoc(choices(["x", "y"], 1), [-2, -2])).toEqual({ acc: 0, accNorm: 0 })
  })
})

describe("meanWithStderr", () => {
  it("is the mean and the sample standard deviation over sqrt(n)", () => {
    // mean 0.75; squared deviations 3 * 0.0625 + 0.5625 = 0.75; / (n - 1) = 0.25; sd 0.5; / 2 = 0.25.
    expect(meanWithStderr([1, 0, 1, 1])).toEqual({ value: 0.75, stderr: 0.25 })
    expect(meanWithStderr([1])).toEqual({ value: 1, stderr: null })
  })
})

describe("scoreTask", () => {
  it("scores OpenBookQA from per-request sums, in any request order", () => {
    const docs = fixtureDocs(openBookQa, "test").slice(0, 3)
    const built = buildTaskRequests(openBookQa, docs, [], byteEncoder, { seed: 42 })
    expect(built.requests).toHaveLength(12)
    expect(built.requests[1]).toMatchObject({
      context: "A candle is lit in a dark room. The room becomes",
      continuation: " brighter"
    })
    // Doc 0 (gold 1): right on both metrics. Doc 1 (gold 0): right on acc only. Doc 2 (gold 1): wrong on both.
    const lls = new Map<string, number>([
      ["0/0", -9],
      ["0/1", -2],
      ["0/2", -9],
      ["0/3", -9],
      ["1/0", -10],
      ["1/1", -30],
      ["1/2", -12],
      ["1/3", -20],
      ["2/0", -1],
      ["2/1", -9],
      ["2/2", -9],
      ["2/3", -9]
    ])
    const answers = built.requests.map((r) => lls.get(`${r.docIndex}/${r.choiceIndex}`)!)
    const result = Either.getOrThrow(scoreTask(openBookQa, built, answers))
    expect(result.docs.map((d) => [d.acc, d.accNorm])).toEqual([[1, 1], [1, 0], [0, 0]])
    expect(result.acc.value).toBeCloseTo(2 / 3, 12)
    expect(result.accNorm?.value).toBeCloseTo(1 / 3, 12)
    expect(result.acc.stderr).toBeCloseTo(Math.sqrt(1 / 3) / Math.sqrt(3), 12)
  })

  it("doc 1 of that example: 'evaporates' (10 chars) -10 loses to 'turns to sand' (13 chars) -12 under acc_norm", () => {
    const doc = fixtureDocs(openBookQa, "test")[1]!.doc
    expect(scoreDoc(doc, [-10, -30, -12, -20])).toEqual({ acc: 1, accNorm: 0 })
  })

  it("reports acc only for WinoGrande, whose requests share the continuation", () => {
    const docs = fixtureDocs(winogrande, "validation").slice(0, 2)
    const built = buildTaskRequests(winogrande, docs, [], byteEncoder, { seed: 42 })
    expect(built.requests.map((r) => [r.context, r.continuation])).toEqual([
      ["The trophy would not fit in the suitcase because the trophy", " was too big."],
      ["The trophy would not fit in the suitcase because the suitcase", " was too big."],
      ["The trophy would not fit in the suitcase because the trophy", " was too small."],
      ["The trophy would not fit in the suitcase because the suitcase", " was too small."]
    ])
    const result = Either.getOrThrow(scoreTask(winogrande, built, [-1, -2, -1, -2]))
    expect(result.accNorm).toBeUndefined()
    expect(result.acc).toEqual({ value: 0.5, stderr: 0.5 })
  })

  it("refuses a wrong number of answers", () => {
    const built = buildTaskRequests(winogrande, fixtureDocs(winogrande, "validation").slice(0, 1), [], byteEncoder, {
      seed: 42
    })
    expect(Either.isLeft(scoreTask(winogrande, built, [-1]))).toBe(true)
  })
})
