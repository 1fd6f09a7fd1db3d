import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { corpusShardJsonl } from "../../../scripts/make-corpus.ts"
import { readIndexedDataset } from "../../../src/data/IndexedDataset.ts"
import type { BadInputError } from "../../../src/tokenize/errors.ts"
import { TokenBuffer } from "../../../src/tokenize/TokenBuffer.ts"
import type { ByteLevelBpe } from "../../../src/tokenize/Tokenizer.ts"
import { tokenizeShard, type TokenizeShardOptions } from "../../../src/tokenize/tokenizeShard.ts"
import { adversarialDocuments } from "./adversarial.ts"
import { IMPLEMENTATIONS, loadFixture } from "./implementations.ts"

const hasZstd = spawnSync("zstd", ["--version"], { stdio: "ignore" }).status === 0

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), "shard-"))
const line = (text: unknown, extra: Record<string, unknown> = {}): string =>
  JSON.stringify({ url: "https://example.org/", text, metadata: { a: 1 }, ...extra })

const runWith =
  (tokenizer: ByteLevelBpe) => (input: string, outputPrefix: string, extra: Partial<TokenizeShardOptions> = {}) =>
    Effect.either(tokenizeShard({ input, tokenizer, outputPrefix, ...extra }))

const zstdCompress = (file: string, data: string | Buffer): void => {
  const r = spawnSync("zstd", ["-q", "-c", "-3"], { input: data })
  fs.writeFileSync(file, r.stdout)
}

const badError = (r: Either.Either<unknown, unknown>): BadInputError => {
  if (Either.isRight(r)) throw new Error("expected a failure")
  return r.left as BadInputError
}

describe.each(IMPLEMENTATIONS)("tokenizeShard (%s encoder)", (implementation) => {
  const tokenizer = loadFixture(implementation)
  const run = runWith(tokenizer)

  // Live where the zstd command line tool may decode: the shard is read from a child process.
  it.live.skipIf(!hasZstd)(
    "reads .jsonl.zst, .jsonl.zstd and zstd by magic, with every decoder, to the same bytes",
    () =>
      Effect.gen(function*() {
        const dir = tmp()
        const jsonl = adversarialDocuments(6, 200).map((d) => line(d)).join("\n") + "\n"
        fs.writeFileSync(path.join(dir, "a.jsonl"), jsonl)
        zstdCompress(path.join(dir, "b.jsonl.zst"), jsonl)
        zstdCompress(path.join(dir, "c.jsonl.zstd"), jsonl)
        zstdCompress(path.join(dir, "d.jsonl"), jsonl)
        const outputs: Array<Buffer> = []
        for (
          const [name, zstd] of [["a.jsonl", "auto"], ["b.jsonl.zst", "cli"], ["c.jsonl.zstd", "js"], [
            "d.jsonl",
            "auto"
          ]] as const
        ) {
          const stats = Either.getOrThrow(yield* run(path.join(dir, name), path.join(dir, `o-${name}`), { zstd }))
          expect(stats.bytesIn).toBe(Buffer.byteLength(jsonl))
          outputs.push(
            Buffer.concat([
              fs.readFileSync(path.join(dir, `o-${name}.bin`)),
              fs.readFileSync(path.join(dir, `o-${name}.idx`))
            ])
          )
        }
        for (const o of outputs) expect(o.equals(outputs[0] as Buffer)).toBe(true)
      })
  )

  it.effect("reads lines across read chunks, one longer than a chunk, as the documents they are", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const input = path.join(dir, "big.jsonl")
      const texts = [0, 1, 2, 3].flatMap((i) =>
        corpusShardJsonl(i).trimEnd().split("\n").map((l) => JSON.parse(l).text as string)
      )
      // About 11 MB: three 4 MiB reads, lines straddling their ends, one 6 MB line spanning two.
      const docs = [...texts, ...texts.slice(0, 1000), [...texts, ...texts].join(" "), ...texts, ...texts.slice(0, 400)]
      fs.writeFileSync(input, docs.map((d) => line(d)).join("\n") + "\n")
      expect(fs.statSync(input).size).toBeGreaterThan(2 * (1 << 22))
      const stats = Either.getOrThrow(yield* run(input, path.join(dir, "o")))
      expect(stats.documents).toBe(docs.length)
      const ds = yield* readIndexedDataset(path.join(dir, "o"))
      const expected = new TokenBuffer(1 << 20)
      for (const d of docs) {
        const before = expected.length
        tokenizer.encodeInto(d, expected)
        if (expected.length > before) expected.push(tokenizer.eodId)
      }
      expect(ds.tokens.length).toBe(expected.length)
      expect(
        Buffer.from(ds.tokens.buffer, ds.tokens.byteOffset, ds.tokens.byteLength).equals(
          Buffer.from(Uint16Array.from(expected.ids.subarray(0, expected.length)).buffer)
        )
      ).toBe(true)
    }))

  it.effect("tolerates CRLF, a last line without newline, extra fields and Python's NaN", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const input = path.join(dir, "s.jsonl")
      fs.writeFileSync(input, `${line("a b")}\r\n{"score": NaN, "text": "NaN inside", "x": -Infinity}\n${line("end")}`)
      const stats = Either.getOrThrow(yield* run(input, path.join(dir, "o")))
      expect(stats.documents).toBe(3)
      const ds = yield* readIndexedDataset(path.join(dir, "o"))
      expect(tokenizer.decode(ds.sequence(1))).toBe("NaN inside<|endoftext|>")
    }))

  const badCases: Array<[string, Buffer, string]> = [
    ["malformed JSON", Buffer.from(`${line("ok")}\n${line("ok")}\n{"text": "unterminated\n`), "malformed JSON"],
    ["a blank line", Buffer.from(`${line("ok")}\n${line("ok")}\n\n`), "malformed JSON"],
    ["missing text", Buffer.from(`${line("ok")}\n${line("ok")}\n{"url": "x"}\n`), "missing or non-string text"],
    ["non-string text", Buffer.from(`${line("ok")}\n${line("ok")}\n${line(42)}\n`), "missing or non-string text"],
    ["a JSON array", Buffer.from(`${line("ok")}\n${line("ok")}\n["text"]\n`), "not a JSON object"],
    [
      "a lone surrogate",
      Buffer.from(`${line("ok")}\n${line("ok")}\n{"text": "a\\ud800b"}\n`),
      "lone surrogate in text"
    ],
    [
      "invalid UTF-8",
      Buffer.concat([
        Buffer.from(`${line("ok")}\n${line("ok")}\n{"text": "`),
        Buffer.from([0xc3, 0x28]),
        Buffer.from(`"}\n`)
      ]),
      "invalid UTF-8"
    ]
  ]

  for (const [name, content, reason] of badCases) {
    it.effect(`fails on ${name} with file and line, leaving nothing behind`, () =>
      Effect.gen(function*() {
        const dir = tmp()
        const input = path.join(dir, "bad.jsonl")
        fs.writeFileSync(input, Buffer.concat([content, Buffer.from(`${line("after")}\n`)]))
        const error = badError(yield* run(input, path.join(dir, "out", "o")))
        expect(error._tag).toBe("BadInputError")
        expect({ file: error.file, line: error.line, reason: error.reason }).toEqual({ file: input, line: 3, reason })
        expect(error.message).toContain(`${input}:3: ${reason}`)
        expect(fs.readdirSync(path.join(dir, "out"))).toEqual([])

        const stats = Either.getOrThrow(yield* run(input, path.join(dir, "out", "o"), { onBadLine: "skip" }))
        expect(stats.badLines).toEqual({ count: 1, firstLines: [3] })
        expect(stats.documents).toBe(3)
        expect(fs.readdirSync(path.join(dir, "out")).sort()).toEqual(["o.bin", "o.idx"])
      }))
  }

  it.effect("skip mode records the count and the first ten line numbers", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const input = path.join(dir, "s.jsonl")
      const lines = Array.from({ length: 40 }, (_, i) => i % 3 === 1 ? "{oops" : line(`doc ${i}`))
      fs.writeFileSync(input, lines.join("\n") + "\n")
      const stats = Either.getOrThrow(yield* run(input, path.join(dir, "o"), { onBadLine: "skip" }))
      expect(stats.badLines.count).toBe(13)
      expect(stats.badLines.firstLines).toEqual([2, 5, 8, 11, 14, 17, 20, 23, 26, 29])
      expect(stats.documents).toBe(27)
    }))

  for (const zstd of ["js", "cli"] as const) {
    // The command line decoder is a child process: that one runs on the live runtime.
    const test = zstd === "cli" ? it.live : it.effect
    test.skipIf(!hasZstd)(
      `detects a truncated zstd stream (${zstd} decoder)`,
      () =>
        Effect.gen(function*() {
          const dir = tmp()
          const jsonl = adversarialDocuments(8, 400).map((d) => line(d)).join("\n") + "\n"
          const full = path.join(dir, "full.jsonl.zst")
          zstdCompress(full, jsonl)
          const bytes = fs.readFileSync(full)
          const input = path.join(dir, "cut.jsonl.zst")
          fs.writeFileSync(input, bytes.subarray(0, Math.floor(bytes.length * 0.7)))
          const error = badError(yield* run(input, path.join(dir, "out", "o"), { zstd }))
          expect(error.reason).toBe("truncated zstd stream")
          expect(error.file).toBe(input)
          expect(error.line).toBeGreaterThan(1)
          expect(fs.readdirSync(path.join(dir, "out"))).toEqual([])

          const stats = Either.getOrThrow(yield* run(input, path.join(dir, "out", "o"), { zstd, onBadLine: "skip" }))
          expect(stats.truncatedInput).toBe(true)
          expect(stats.badLines.count).toBe(1)
          expect(stats.badLines.firstLines).toEqual([error.line])
          expect(stats.documents).toBe(error.line - 1)
        })
    )
  }

  it.effect("reports a missing input as an I/O error", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const r = yield* run(path.join(dir, "nope.jsonl"), path.join(dir, "out", "o"))
      expect(Either.isLeft(r) && r.left._tag).toBe("ShardIoError")
      expect(fs.readdirSync(path.join(dir, "out"))).toEqual([])
    }))
})
