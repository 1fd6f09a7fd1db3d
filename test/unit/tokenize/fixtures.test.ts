import { decompress } from "fzstd"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { corpusShardJsonl, SHARD_FILES } from "../../../scripts/make-corpus.ts"
import { makeTokenizerJson } from "../../../scripts/make-tokenizer.ts"

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
})
