import { decompress } from "fzstd"
import * as fs from "node:fs"
import * as path from "node:path"
import { byteLevelPreTokenizer } from "tokenizers"
import { describe, expect, it } from "vitest"
import { makeRng } from "../../../scripts/corpus/prng.ts"
import { corpusShardJsonl, SHARD_FILES } from "../../../scripts/make-corpus.ts"
import { makeTokenizerJson } from "../../../scripts/make-tokenizer.ts"
import { CODE_POINT_CLASS, LETTER, NUMBER, OTHER, WHITESPACE } from "../../../src/tokenize/unicodeClasses.ts"

const ROOT = path.join(import.meta.dirname, "..", "..", "..")

describe("committed fixtures", () => {
  it("the corpus regenerates to the same jsonl", () => {
    SHARD_FILES.forEach((name, i) => {
      const bytes = fs.readFileSync(path.join(ROOT, "fixtures", "corpus", name))
      const jsonl = name.endsWith(".jsonl") ? bytes : Buffer.from(decompress(bytes))
      expect(jsonl.equals(Buffer.from(corpusShardJsonl(i), "utf8")), name).toBe(true)
    })
  })

  it("the corpus is in DCLM's line format", () => {
    const first = JSON.parse(corpusShardJsonl(0).split("\n")[0] as string)
    expect(Object.keys(first)).toEqual(["text", "url", "metadata"])
    expect(typeof first.text).toBe("string")
  })

  it("the tokenizer regenerates to the same bytes", () => {
    const committed = fs.readFileSync(path.join(ROOT, "fixtures", "tokenizer", "tokenizer.json"), "utf8")
    expect(makeTokenizerJson() === committed).toBe(true)
  })

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
