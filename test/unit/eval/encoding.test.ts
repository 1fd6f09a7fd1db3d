import { describe, expect, it } from "vitest"
import { encodePair, moveTrailingWhitespace, scoringWindow } from "../../../src/eval/encoding.ts"
import { byteEncoder, wordEncoder } from "./support.ts"

describe("moveTrailingWhitespace", () => {
  it("moves every trailing whitespace character (Python rstrip) to the continuation", () => {
    expect(moveTrailingWhitespace("Answer: ", "Paris")).toEqual({ context: "Answer:", continuation: " Paris" })
    expect(moveTrailingWhitespace("Answer:\n \t", " x")).toEqual({ context: "Answer:", continuation: "\n \t x" })
    expect(moveTrailingWhitespace("Answer:", " Paris")).toEqual({ context: "Answer:", continuation: " Paris" })
  })
})

describe("encodePair", () => {
  it("encodes context + continuation together and splits at the context's length", () => {
    const enc = wordEncoder()
    const pair = encodePair(enc, "Question: Capital?\nAnswer:", " Paris")
    const id = (piece: string) => enc.vocab.get(piece)
    expect(pair.continuation).toEqual([id(" Paris")])
    expect(pair.context).toEqual(["Question:", " Capital?", "\n", "Answer:"].map(id))
  })

  it("a trailing space in the context becomes part of the continuation's first token", () => {
    const enc = wordEncoder()
    // Without the rule, "Answer: " would end in a lone " " token and the continuation would be "Paris".
    const pair = encodePair(enc, "Answer: ", "Paris")
    expect(pair.continuation).toEqual([enc.vocab.get(" Paris")])
    expect(pair.context).toEqual([enc.vocab.get("Answer:")])
    expect(enc.vocab.has(" ")).toBe(false)
  })

  it("splits by token count, even when a merge crosses the boundary (as the harness does)", () => {
    // "xab" encodes as [x, ab]; the context "xa" alone is 2 tokens [x, a], so the split after 2 tokens of
    // the whole gives the context [x, ab] and an empty continuation. The harness does exactly this.
    const merging = {
      eodId: 0,
      encode: (t: string) => (t.match(/ab|./g) ?? []).map((c) => c.length * 100 + c.charCodeAt(0))
    }
    expect(encodePair(merging, "xa", "b")).toEqual({ context: [220, 297], continuation: [] })
    expect(encodePair(merging, "x", "ab")).toEqual({ context: [220], continuation: [297] })
  })

  it("uses [EOD] as the context of an empty context and encodes the continuation alone", () => {
    expect(encodePair(byteEncoder, "", " hi")).toEqual({ context: [256], continuation: [32, 104, 105] })
  })

  it("counts UTF-8 bytes with a byte-level encoder", () => {
    expect(encodePair(byteEncoder, "é", " ü").continuation).toEqual([32, 0xc3, 0xbc])
  })
})

describe("scoringWindow", () => {
  it("keeps the last maxLength + 1 tokens, cutting the context from the left", () => {
    const pair = { context: [1, 2, 3, 4, 5], continuation: [6, 7] }
    expect(scoringWindow(pair, 4)).toEqual({ tokens: [3, 4, 5, 6, 7], continuationLength: 2 })
    expect(scoringWindow(pair, 100)).toEqual({ tokens: [1, 2, 3, 4, 5, 6, 7], continuationLength: 2 })
    expect(() => scoringWindow(pair, 1)).toThrow(RangeError)
  })
})
