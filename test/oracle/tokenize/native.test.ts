/**
 * The native line reader against the TypeScript one, which reads lines with JSON.parse: the same
 * lines accepted, refused and read, on edge cases and randomly damaged lines.
 */
import { it } from "@effect/vitest"
import { Effect, Either } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect } from "vitest"
import { makeRng } from "../../../scripts/corpus/prng.ts"
import { tokenizeShard } from "../../../src/tokenize/tokenizeShard.ts"
import type { OnBadLine } from "../../../src/tokenize/tokenizeShard.ts"
import { adversarialDocuments } from "../../unit/tokenize/adversarial.ts"
import { loadFixture, nativeStatus } from "../../unit/tokenize/implementations.ts"

const tokenizers = { js: loadFixture("js"), native: nativeStatus._tag === "Loaded" ? loadFixture("native") : undefined }

/** Both encoders on the same shard: the same output bytes, stats and errors. */
const expectSameShard = (lines: ReadonlyArray<string>, onBadLine: OnBadLine) =>
  Effect.gen(function*() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "native-"))
    const input = path.join(dir, "shard.jsonl")
    fs.writeFileSync(input, lines.join("\n") + "\n")
    const results = []
    for (const implementation of ["js", "native"] as const) {
      const outputPrefix = path.join(dir, implementation)
      const r = yield* Effect.either(
        tokenizeShard({ input, tokenizer: tokenizers[implementation]!, outputPrefix, onBadLine })
      )
      results.push({
        result: Either.isRight(r) ? r.right : { ...r.left },
        bytes: Either.isRight(r)
          ? Buffer.concat([fs.readFileSync(`${outputPrefix}.bin`), fs.readFileSync(`${outputPrefix}.idx`)]).toString(
            "hex"
          )
          : ""
      })
    }
    expect(results[1]!.result).toEqual(results[0]!.result)
    expect(results[1]!.bytes === results[0]!.bytes).toBe(true)
    return results[0]!.result
  })

describe.runIf(nativeStatus._tag === "Loaded")("the native line reader against JSON.parse", () => {
  const edgeLines = [
    `{"text":"plain"}`,
    `{"te\\u0078t":"escaped key"}`,
    `{"text":"first","text":"the last one wins"}`,
    `{"text":42,"text":"a string after a number"}`,
    `{"meta":{"text":"nested"},"text":"top level"}`,
    `{"text":"\\ud83d\\ude00 pair \\u00e9 \\u0000 nul \\/ slash \\b\\f\\n\\r\\t \\"q\\" \\\\ end"}`,
    `{"text":"x","n":[0,-0,1.5,-2e10,3E+2,4e-3,1e999,[],{},[[{}]],true,false,null,"s"]}`,
    `  {"text":"spaces around"}  \r`,
    `\t{ "text" : "spaced" , "a" : [ 1 , 2 ] , "b" : { } }`,
    `{"\\ud800":1,"text":"a key with a lone surrogate is just another key"}`,
    `{"text":""}`,
    `{"text":"   "}`,
    `{"text":"e\\u0301 needs NFC, as does A\u030a"}`,
    `{"text":"special <|endoftext|> and <|padding|> inside"}`,
    `{"a":${"[".repeat(300)}${"]".repeat(300)},"text":"nested deeper than the native scanner goes"}`,
    `{"text":"Python's NaN","score":NaN,"x":-Infinity}`,
    `{"text":"\u2019curly\u201d quotes \u2014 dashes \u2026 \u6771\u4eac \ud83d\ude42"}`
  ]
  const badLines = [
    `{"text":"a string before a number","text":42}`,
    `{"meta":{"text":"nested only"}}`,
    `{"text":"lone \\ud800 high"}`,
    `{"text":"lone \\udc00 low"}`,
    `{"text":"x","n":01}`,
    `{"text":"x","n":1.}`,
    `{"text":"x","n":-}`,
    `{"text":"x","n":+1}`,
    `{"text":"x","n":.5}`,
    `{"text":"x","n":1e}`,
    `{"text":"x","n":[1,]}`,
    `{"text":"x",}`,
    `{"text":"x"} trailing`,
    `{"text":"x"}}`,
    `{"text":"raw control \u0001 char"}`,
    `{"text":"\\x"}`,
    `{"text":"\\u12"}`,
    `{"text":"\\u12G4"}`,
    `{"text":"unterminated}`,
    `["text"]`,
    `"text"`,
    `null`,
    ``,
    `{}`,
    `\ufeff{"text":"byte order mark"}`,
    `{"text" "no colon"}`,
    `{text:"unquoted key"}`,
    `{"text":'single quotes'}`,
    `{"text":"x","t":tru}`
  ]

  it.effect("accepts, refuses and reads the same lines, in skip mode", () =>
    Effect.gen(function*() {
      const stats = yield* expectSameShard([...edgeLines, ...badLines, ...edgeLines], "skip")
      expect(stats).toMatchObject({ documents: 2 * edgeLines.length, badLines: { count: badLines.length } })
    }))

  it.effect("fails on the same line for the same reason", () =>
    Effect.gen(function*() {
      for (const bad of badLines) {
        const error = yield* expectSameShard([edgeLines[0]!, bad, edgeLines[1]!], "fail")
        expect(error).toMatchObject({ _tag: "BadInputError", line: 2 })
      }
    }))

  /** What the damage inserts. */
  const alphabet = ["{", "}", "[", "]", "\"", ",", ":", "\\", "0", "e", ".", "-", "+", " ", "u", "n", "\\u00", "NaN"]

  it.effect("agrees on 3000 randomly damaged lines", () =>
    Effect.gen(function*() {
      const rng = makeRng(77)
      const docs = adversarialDocuments(31, 1000)
      const lines: Array<string> = []
      for (let i = 0; i < 3000; i++) {
        let line = JSON.stringify({ id: i, text: docs[i % docs.length], meta: { n: [1.5, -2, true, null] } })
        const edits = 1 + rng.int(3)
        for (let e = 0; e < edits; e++) {
          const at = rng.int(line.length)
          const op = rng.int(3)
          if (op === 0) line = line.slice(0, at) + line.slice(at + 1)
          else if (op === 1) line = line.slice(0, at) + rng.pick(alphabet) + line.slice(at)
          else {
            line = line.slice(0, at) + line.slice(at, at + 1 + rng.int(8)).repeat(2) + line.slice(at + 1 + rng.int(8))
          }
        }
        lines.push(line)
      }
      const stats = yield* expectSameShard(lines, "skip")
      // Many edits land inside the text and leave the line valid; the rest are caught.
      expect(stats).toMatchObject({ badLines: { count: expect.any(Number) } })
      const bad = (stats as { badLines: { count: number } }).badLines.count
      expect(bad).toBeGreaterThan(300)
      expect(bad).toBeLessThan(2700)
    }))

  it.effect("grows its id buffer for a document of over a million ids", () =>
    Effect.gen(function*() {
      const big = JSON.stringify({ text: "x y\n".repeat(350_000) })
      const stats = yield* expectSameShard([edgeLines[0]!, big, edgeLines[1]!], "fail")
      expect((stats as { tokens: number }).tokens).toBeGreaterThan(1 << 20)
    }))
})
