import { it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect } from "vitest"
import { loadTokenizer } from "../../../src/tokenize/Tokenizer.ts"
import { FIXTURE } from "./implementations.ts"

const fixtureJson = (): Record<string, unknown> => JSON.parse(fs.readFileSync(FIXTURE, "utf8"))

describe("loadTokenizer errors", () => {
  const load = (json: unknown) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tok-"))
    const file = path.join(dir, "tokenizer.json")
    fs.writeFileSync(file, typeof json === "string" ? json : JSON.stringify(json))
    return Effect.flip(loadTokenizer(file))
  }

  it.effect("names the unsupported component", () =>
    Effect.gen(function*() {
      const json = fixtureJson()
      ;(json.model as Record<string, unknown>).type = "WordPiece"
      expect((yield* load(json)).reason).toMatch(/^model: unsupported model type "WordPiece"/)
      const json2 = fixtureJson()
      json2.pre_tokenizer = { type: "Metaspace", replacement: "▁" }
      expect((yield* load(json2)).reason).toMatch(/^pre_tokenizer: unsupported pre_tokenizer type "Metaspace"/)
      const json3 = fixtureJson()
      json3.normalizer = { type: "Lowercase" }
      expect((yield* load(json3)).reason).toMatch(/^normalizer: unsupported normalizer type "Lowercase"/)
      const json4 = fixtureJson()
      ;(json4.added_tokens as Array<Record<string, unknown>>)[0]!.lstrip = true
      expect((yield* load(json4)).reason).toMatch(/added_tokens\[0\]\.lstrip/)
    }))

  it.effect("reports unreadable and non-JSON files", () =>
    Effect.gen(function*() {
      expect((yield* load("{not json")).reason).toMatch(/not valid JSON/)
      const missing = yield* Effect.flip(loadTokenizer("/nonexistent/tokenizer.json"))
      expect(missing._tag).toBe("TokenizerLoadError")
      expect(missing.message).toMatch(/nonexistent.*cannot read/)
    }))

  it.effect("refuses a missing EOD token", () =>
    Effect.gen(function*() {
      const json = fixtureJson()
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tok-"))
      const file = path.join(dir, "tokenizer.json")
      fs.writeFileSync(file, JSON.stringify(json))
      const error = yield* Effect.flip(loadTokenizer(file, { eodToken: "</s>" }))
      expect(error.reason).toMatch(/EOD token "<\/s>"/)
    }))
})
