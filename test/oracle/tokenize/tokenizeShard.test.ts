/**
 * tokenizeShard against Megatron's preprocess_data --append-eod, whose ids come from Hugging Face's
 * tokenizers: the oracle's ids plus EOD, empty documents skipped.
 */
import { it } from "@effect/vitest"
import { Effect, Either } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Tokenizer } from "tokenizers"
import { describe, expect } from "vitest"
import { readIndexedDataset } from "../../../src/data/IndexedDataset.ts"
import type { ByteLevelBpe } from "../../../src/tokenize/Tokenizer.ts"
import { tokenizeShard, type TokenizeShardOptions } from "../../../src/tokenize/tokenizeShard.ts"
import { adversarialDocuments } from "../../unit/tokenize/adversarial.ts"
import { FIXTURE, IMPLEMENTATIONS, loadFixture } from "../../unit/tokenize/implementations.ts"

const oracle = Tokenizer.fromFile(FIXTURE)

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), "shard-"))
const line = (text: unknown, extra: Record<string, unknown> = {}): string =>
  JSON.stringify({ url: "https://example.org/", text, metadata: { a: 1 }, ...extra })

const runWith =
  (tokenizer: ByteLevelBpe) => (input: string, outputPrefix: string, extra: Partial<TokenizeShardOptions> = {}) =>
    Effect.either(tokenizeShard({ input, tokenizer, outputPrefix, ...extra }))

describe.each(IMPLEMENTATIONS)("tokenizeShard (%s encoder)", (implementation) => {
  const tokenizer = loadFixture(implementation)
  const run = runWith(tokenizer)

  it.effect("writes what preprocess_data --append-eod writes (oracle ids + EOD, empty docs skipped)", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const docs = ["", ...adversarialDocuments(5, 300), "", "plain text"]
      const input = path.join(dir, "shard.jsonl")
      fs.writeFileSync(input, docs.map((d) => line(d)).join("\n") + "\n")
      const out = path.join(dir, "out", "shard_text_document")
      const stats = Either.getOrThrow(yield* run(input, out))
      const expected = (yield* Effect.promise(() => oracle.encodeBatch(docs))).map((e) => e.getIds())
      const nonEmpty = expected.filter((ids) => ids.length > 0).map((ids) => [...ids, 0])
      const ds = yield* readIndexedDataset(out)
      expect(ds.dtype).toBe("uint16")
      expect(ds.documentCount).toBe(docs.length)
      expect(ds.sequenceLengths.length).toBe(nonEmpty.length)
      nonEmpty.forEach((ids, i) => expect(Array.from(ds.sequence(i))).toEqual(ids))
      // Document indices repeat at empty documents.
      const docIdx: Array<number> = [0]
      for (const ids of expected) docIdx.push((docIdx.at(-1) as number) + (ids.length > 0 ? 1 : 0))
      expect(Array.from(ds.documentIndices)).toEqual(docIdx)
      expect(stats).toEqual({
        documents: docs.length,
        emptyDocuments: expected.length - nonEmpty.length,
        tokens: nonEmpty.reduce((a, ids) => a + ids.length, 0),
        bytesIn: fs.statSync(input).size,
        badLines: { count: 0, firstLines: [] },
        truncatedInput: false
      })
      expect(fs.readdirSync(path.dirname(out)).sort()).toEqual(["shard_text_document.bin", "shard_text_document.idx"])
    }))
})
