import { it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Tokenizer } from "tokenizers"
import { describe, expect } from "vitest"
import { corpusShardJsonl, SHARD_FILES } from "../../../scripts/make-corpus.ts"
import { mergeIndexedDatasets, readIndexedDataset } from "../../../src/data/IndexedDataset.ts"
import { tokenizeShardsInParallel } from "../../../src/tokenize/parallel.ts"
import { megatronOutputPrefix } from "../../../src/tokenize/tokenizeShard.ts"
import { NATIVE_REQUIRED, nativeStatus } from "../../unit/tokenize/implementations.ts"

const ROOT = path.join(import.meta.dirname, "..", "..", "..")
const TOKENIZER = path.join(ROOT, "fixtures", "tokenizer", "tokenizer.json")

describe("the bundled corpus, end to end", () => {
  // Real worker threads: the test runs with the live clock and services.
  it.live("tokenizes every shard on worker threads exactly as the oracle + EOD, and merges them", () =>
    Effect.gen(function*() {
      const out = fs.mkdtempSync(path.join(os.tmpdir(), "corpus-"))
      const jobs = SHARD_FILES.map((name) => ({
        input: path.join(ROOT, "fixtures", "corpus", name),
        outputPrefix: megatronOutputPrefix(path.join(out, name.replace(/\.jsonl.*$/, "")))
      }))
      const results = yield* tokenizeShardsInParallel({ tokenizerPath: TOKENIZER, jobs, concurrency: 2 })
      const oracle = Tokenizer.fromFile(TOKENIZER)
      let allDocs = 0
      for (let i = 0; i < SHARD_FILES.length; i++) {
        const texts = corpusShardJsonl(i).trimEnd().split("\n").map((l) => JSON.parse(l).text as string)
        const expected = (yield* Effect.promise(() => oracle.encodeBatch(texts))).map((e) => e.getIds())
          .filter((ids) => ids.length > 0)
          .map((ids) => [...ids, 0])
        const ds = yield* readIndexedDataset(jobs[i]!.outputPrefix)
        expect(ds.documentCount).toBe(texts.length)
        expect(ds.sequenceLengths.length).toBe(expected.length)
        expected.forEach((ids, k) => expect(Array.from(ds.sequence(k))).toEqual(ids))
        const stats = results[i]!.stats
        // Worker threads load the native encoder too.
        expect(results[i]!.implementation).toBe(NATIVE_REQUIRED || nativeStatus._tag === "Loaded" ? "native" : "js")
        expect(stats.documents).toBe(texts.length)
        expect(stats.emptyDocuments).toBe(texts.length - expected.length)
        expect(stats.tokens).toBe(ds.tokens.length)
        allDocs += texts.length
      }
      const merged = path.join(out, "merged_text_document")
      const summary = yield* mergeIndexedDatasets(jobs.map((j) => j.outputPrefix), merged)
      expect(summary.documents).toBe(allDocs)
      const ds = yield* readIndexedDataset(merged)
      const parts = yield* Effect.forEach(jobs, (j) => readIndexedDataset(j.outputPrefix), { concurrency: "unbounded" })
      expect(Array.from(ds.tokens)).toEqual(parts.flatMap((p) => Array.from(p.tokens)))
    }))
})
