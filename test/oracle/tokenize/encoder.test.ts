/**
 * The byte-level BPE encoders (JS and native) against Hugging Face's tokenizers on the fixture, on
 * adversarial documents and on tokenizer.json variants.
 */
import { Either } from "effect"
import * as fs from "node:fs"
import { Tokenizer } from "tokenizers"
import { describe, expect, it } from "vitest"
import { corpusShardJsonl } from "../../../scripts/make-corpus.ts"
import { tokenizerFromJson } from "../../../src/tokenize/Tokenizer.ts"
import { adversarialDocuments } from "../../unit/tokenize/adversarial.ts"
import {
  FIXTURE,
  IMPLEMENTATIONS,
  loadFixture,
  type TestedImplementation
} from "../../unit/tokenize/implementations.ts"

const fixtureJson = (): Record<string, unknown> => JSON.parse(fs.readFileSync(FIXTURE, "utf8"))

/** Ids from Hugging Face's implementation, as Megatron calls it: tokenizer(text) with special tokens. */
const encodeWithOracle = async (oracle: Tokenizer, docs: ReadonlyArray<string>): Promise<Array<Array<number>>> => {
  const out: Array<Array<number>> = []
  for (let i = 0; i < docs.length; i += 500) {
    const batch = await oracle.encodeBatch(docs.slice(i, i + 500), { addSpecialTokens: true })
    for (const e of batch) out.push(e.getIds())
  }
  return out
}

// The oracle is the slow part: each document set is encoded by it once, for both encoders.
const oracleCache = new Map<string, Promise<Array<Array<number>>>>()
const oracleIds = (oracle: Tokenizer, docs: ReadonlyArray<string>, key: string): Promise<Array<Array<number>>> => {
  let ids = oracleCache.get(key)
  if (ids === undefined) oracleCache.set(key, ids = encodeWithOracle(oracle, docs))
  return ids
}

const expectSameAsOracle = async (
  implementation: TestedImplementation,
  variant: string,
  json: string,
  docs: ReadonlyArray<string>
) => {
  const ours = Either.getOrThrow(tokenizerFromJson(json, "variant.json", { implementation }))
  expect(ours.implementation).toBe(implementation)
  const expected = await oracleIds(Tokenizer.fromString(json), docs, variant)
  const mismatches = docs.filter((d, i) => JSON.stringify(Array.from(ours.encode(d))) !== JSON.stringify(expected[i]))
  expect(mismatches.slice(0, 3)).toEqual([])
}

describe.each(IMPLEMENTATIONS)("ByteLevelBpe (%s encoder) against the tokenizers oracle", (implementation) => {
  const ours = loadFixture(implementation)
  const oracle = Tokenizer.fromFile(FIXTURE)

  it("uses the encoder asked for", () => {
    expect(ours.implementation).toBe(implementation)
  })

  it("reports len(tokenizer) and the EOD id", () => {
    expect(ours.vocabSize).toBe(oracle.getVocabSize(true))
    expect(ours.eodId).toBe(0)
    expect(ours.tokenToId("<|padding|>")).toBe(1)
    expect(ours.contentHash).toMatch(/^[0-9a-f]{64}$/)
  })

  it("encodes 4000 adversarial documents identically", async () => {
    const docs = adversarialDocuments(20240601, 4000)
    const expected = await oracleIds(oracle, docs, "adversarial")
    const bad: Array<{ doc: string; ours: Array<number>; oracle: Array<number> }> = []
    docs.forEach((d, i) => {
      const got = Array.from(ours.encode(d))
      if (JSON.stringify(got) !== JSON.stringify(expected[i])) bad.push({ doc: d, ours: got, oracle: expected[i]! })
    })
    expect(bad.slice(0, 2)).toEqual([])
  })

  it("encodes the bundled corpus identically", async () => {
    const docs = corpusShardJsonl(2).trimEnd().split("\n").slice(0, 400).map((l) => JSON.parse(l).text as string)
    const expected = await oracleIds(oracle, docs, "corpus")
    docs.forEach((d, i) => expect(Array.from(ours.encode(d))).toEqual(expected[i]))
  })

  it("handles the tricky cases one by one", async () => {
    const cases = [
      "",
      " ",
      "   ",
      " ".repeat(30),
      "a" + " ".repeat(25) + "b",
      "hello<|endoftext|>world",
      "<|endoftext|><|endoftext|>",
      "e\u0301<|padding|>\u0301",
      "line\r\nnext\n\n\tx",
      "it's 'S I'M we'll you're 'd",
      "\u0085!\ufeff!",
      "👩‍👩‍👧‍👦🇯🇵",
      "x".repeat(5000),
      "東".repeat(3000),
      "3.14159 2024-01-01 1,000,000"
    ]
    const expected = await oracleIds(oracle, cases, "cases")
    cases.forEach((c, i) => expect(Array.from(ours.encode(c)), JSON.stringify(c.slice(0, 40))).toEqual(expected[i]))
  })

  it("decodes like the oracle", async () => {
    const docs = adversarialDocuments(7, 300)
    for (const d of docs) {
      const ids = Array.from(ours.encode(d))
      expect(ours.decode(ids)).toBe(await oracle.decode(ids, false))
    }
  })
})

describe.each(IMPLEMENTATIONS)("tokenizer.json variants (%s encoder)", (implementation) => {
  const docs = adversarialDocuments(99, 600)
  const expectSame = (variant: string, json: Record<string, unknown>) =>
    expectSameAsOracle(implementation, variant, JSON.stringify(json), docs)

  it("add_prefix_space true", async () => {
    const json = fixtureJson()
    ;(json.pre_tokenizer as Record<string, unknown>).add_prefix_space = true
    await expectSame("prefix-space", json)
  })

  it("a TemplateProcessing post-processor adding BOS and EOS", async () => {
    const json = fixtureJson()
    json.post_processor = {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<|padding|>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, {
        SpecialToken: { id: "<|endoftext|>", type_id: 0 }
      }],
      pair: [{ Sequence: { id: "A", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } }],
      special_tokens: {
        "<|padding|>": { id: "<|padding|>", ids: [1], tokens: ["<|padding|>"] },
        "<|endoftext|>": { id: "<|endoftext|>", ids: [0], tokens: ["<|endoftext|>"] }
      }
    }
    await expectSame("template", json)
  })

  it("merges as [left, right] pairs, no normalizer, ignore_merges", async () => {
    const json = fixtureJson()
    const model = json.model as Record<string, unknown>
    model.merges = (model.merges as Array<string>).map((m) => m.split(" "))
    model.ignore_merges = true
    json.normalizer = null
    await expectSame("pairs-ignore-merges", json)
  })

  it("special tokens marked normalized and whitespace runs not normalized", async () => {
    const json = fixtureJson()
    for (const t of json.added_tokens as Array<Record<string, unknown>>) t.normalized = !t.normalized
    await expectSame("added-normalized", json)
  })

  it("added tokens of one byte, of several UTF-8 bytes and sharing prefixes", async () => {
    const json = fixtureJson()
    const model = json.model as { vocab: Record<string, number> }
    const added = json.added_tokens as Array<Record<string, unknown>>
    let next = Math.max(...Object.values(model.vocab), ...added.map((t) => t.id as number)) + 1
    const token = (content: string, normalized: boolean) => ({
      id: model.vocab[content] ?? next++,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized,
      special: false
    })
    added.push(token("~", false), token("th", true), token("the", true), token("café", true), token("🙂x", false))
    await expectSame("added-mixed", json)
  })

  it("an NFKC normalizer, pre-tokenizer without the regex", async () => {
    const json = fixtureJson()
    json.normalizer = { type: "Sequence", normalizers: [{ type: "NFKC" }] }
    ;(json.pre_tokenizer as Record<string, unknown>).use_regex = false
    await expectSame("nfkc-no-regex", json)
  })
})
