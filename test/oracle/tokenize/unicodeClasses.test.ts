/**
 * The generated Unicode class table against Hugging Face's byte-level pre-tokenizer.
 */
import { byteLevelPreTokenizer } from "tokenizers"
import { describe, expect, it } from "vitest"
import { makeRng } from "../../../scripts/corpus/prng.ts"
import { CODE_POINT_CLASS, LETTER, NUMBER, OTHER, WHITESPACE } from "../../../src/tokenize/unicodeClasses.ts"

describe("committed fixtures", () => {
  it("the Unicode class table agrees with the oracle on sampled code points", () => {
    const pt = byteLevelPreTokenizer(false, true)
    const pieces = (s: string): number => pt.preTokenizeString(s).length
    const rng = makeRng(3)
    for (let n = 0; n < 3000; n++) {
      let cp = rng.int(0x110000)
      if (cp >= 0xd800 && cp <= 0xdfff) cp = 0x85
      const c = String.fromCodePoint(cp)
      const oracle = pieces("a" + c) === 1
        ? LETTER
        : pieces("1" + c) === 1
        ? NUMBER
        : pieces("!" + c) === 1
        ? OTHER
        : WHITESPACE
      expect(CODE_POINT_CLASS[cp], cp.toString(16)).toBe(oracle)
    }
  })
})
