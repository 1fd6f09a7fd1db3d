/**
 * One DCLM shard -> one Megatron indexed dataset, as Megatron's tools/preprocess_data.py with
 * --append-eod and no sentence splitting: each line's `text` is encoded, EOD appended when it has
 * a token, and written as one document of one sequence; documents without tokens keep an index
 * entry. Bad lines fail the shard with file and line, or are skipped and counted.
 */
import { Effect, Either, Schema } from "effect"
import { isUtf8 } from "node:buffer"
import { dtypeForVocabSize, makeIndexedDatasetWriter } from "../data/IndexedDataset.ts"
import type { IndexedDatasetWriter } from "../data/IndexedDataset.ts"
import { BadInputError, type BadInputReason, ShardIoError } from "./errors.ts"
import { jsonlChunks, type ZstdDecoder, ZstdStreamError } from "./jsonlSource.ts"
import type { NativeEncoder } from "./NativeEncoder.ts"
import { TokenBuffer } from "./TokenBuffer.ts"
import type { ByteLevelBpe } from "./Tokenizer.ts"

export const OnBadLine = Schema.Literal("fail", "skip")
export type OnBadLine = typeof OnBadLine.Type

export const BadLines = Schema.Struct({
  count: Schema.Int,
  /** 1-based numbers of the first bad lines (at most 10). */
  firstLines: Schema.Array(Schema.Int)
})
export type BadLines = typeof BadLines.Type

export const ShardStats = Schema.Struct({
  /** Documents written to the index, empty ones included (= good lines). */
  documents: Schema.Int,
  /** Documents without tokens: an index entry but no sequence, as Megatron writes them. */
  emptyDocuments: Schema.Int,
  /** Tokens written, EODs included. */
  tokens: Schema.Int,
  /** Uncompressed jsonl bytes read. */
  bytesIn: Schema.Int,
  badLines: BadLines,
  /** The zstd stream ended early (only possible with onBadLine "skip"; counted as one bad line). */
  truncatedInput: Schema.Boolean
})
export type ShardStats = typeof ShardStats.Type

export interface TokenizeShardOptions {
  readonly input: string
  readonly tokenizer: ByteLevelBpe
  /** Writes `<outputPrefix>.bin` and `.idx`; Megatron names it `<output-prefix>_text_document`. */
  readonly outputPrefix: string
  readonly onBadLine?: OnBadLine
  /** JSON field holding the text; DCLM's is "text". */
  readonly textKey?: string
  readonly zstd?: ZstdDecoder
}

/** preprocess_data's naming of the dataset written for json key `key`. */
export const megatronOutputPrefix = (outputPrefix: string, key = "text"): string => `${outputPrefix}_${key}_document`

const MAX_RECORDED_BAD_LINES = 10
const NEWLINE = 0x0a
/** Lines per native call: enough to make the call's cost vanish, few enough to stay in cache. */
const NATIVE_LINES = 4096

/** Python's json.loads also takes NaN, Infinity and -Infinity; rewrite them to null outside strings. */
const parsePythonJson = (s: string): unknown => {
  let out = ""
  let inString = false
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string
    if (inString) {
      if (c === "\\") {
        out += c + (s[i + 1] ?? "")
        i++
        continue
      }
      if (c === "\"") inString = false
      out += c
    } else if (c === "\"") {
      inString = true
      out += c
    } else if (s.startsWith("NaN", i)) {
      out += "null"
      i += 2
    } else if (s.startsWith("Infinity", i)) {
      out += "null"
      i += 7
    } else if (s.startsWith("-Infinity", i)) {
      out += "null"
      i += 8
    } else {
      out += c
    }
  }
  return JSON.parse(out)
}

const isWellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed()

/** Line-level state machine over uncompressed chunks; synchronous, so the hot loop stays tight. */
class ShardProcessor {
  lines = 0
  documents = 0
  emptyDocuments = 0
  bytesIn = 0
  badCount = 0
  readonly firstBadLines: Array<number> = []
  truncatedInput = false
  private carry: Uint8Array | undefined
  private readonly ids = new TokenBuffer(1 << 16)
  private readonly eod: number
  private readonly native: NativeEncoder | undefined
  private nativeIds = new Uint32Array(0)
  private readonly nativeLines = new Int32Array(2 * NATIVE_LINES)

  constructor(
    private readonly file: string,
    private readonly tokenizer: ByteLevelBpe,
    private readonly writer: IndexedDatasetWriter,
    private readonly skip: boolean,
    private readonly textKey: string
  ) {
    this.eod = tokenizer.eodId
    this.native = tokenizer.native
    if (this.native !== undefined) this.nativeIds = new Uint32Array(1 << 20)
  }

  /** Records a bad line; returns the error to fail with, or undefined when skipping. */
  bad(line: number, reason: BadInputReason, detail?: string): BadInputError | undefined {
    if (!this.skip) {
      return new BadInputError(
        detail === undefined ? { file: this.file, line, reason } : { file: this.file, line, reason, detail }
      )
    }
    this.badCount++
    if (this.firstBadLines.length < MAX_RECORDED_BAD_LINES) this.firstBadLines.push(line)
    return undefined
  }

  feed(chunk: Uint8Array): BadInputError | undefined {
    this.bytesIn += chunk.length
    let data = chunk
    if (this.carry !== undefined) {
      // Only the line that straddles the chunks is joined; the rest is read where it lies.
      const first = chunk.indexOf(NEWLINE)
      const head = first < 0 ? chunk : chunk.subarray(0, first + 1)
      const joined = new Uint8Array(this.carry.length + head.length)
      joined.set(this.carry)
      joined.set(head, this.carry.length)
      this.carry = undefined
      if (first < 0) {
        this.carry = joined
        return undefined
      }
      const error = this.block(joined)
      if (error !== undefined) return error
      data = chunk.subarray(first + 1)
    }
    const last = data.lastIndexOf(NEWLINE)
    if (last < 0) {
      this.carry = data
      return undefined
    }
    if (last + 1 < data.length) this.carry = data.slice(last + 1)
    return this.block(data.subarray(0, last + 1))
  }

  /** The input ended: a last line without a newline is still a line (as for Python's file iteration). */
  end(): BadInputError | undefined {
    const rest = this.carry
    this.carry = undefined
    return rest === undefined ? undefined : this.block(rest)
  }

  /** The zstd stream broke off: lines before it are kept; what follows is lost. */
  broken(e: ZstdStreamError): BadInputError | undefined {
    this.carry = undefined
    this.truncatedInput = true
    return this.bad(this.lines + 1, e.kind === "truncated" ? "truncated zstd stream" : "corrupt zstd stream", e.message)
  }

  /** Whole lines (each ending in a newline, except maybe the last). */
  private block(bytes: Uint8Array): BadInputError | undefined {
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)
    // Validating the block is nearly free (simdutf); decoding line by line is several times faster
    // than one huge string (and keeps ASCII-only lines one-byte strings).
    const valid = isUtf8(buf)
    if (valid && this.native !== undefined) return this.nativeBlock(this.native, buf)
    let start = 0
    while (start < buf.length) {
      let end = buf.indexOf(NEWLINE, start)
      if (end < 0) end = buf.length
      let error: BadInputError | undefined
      if (valid || isUtf8(buf.subarray(start, end))) {
        error = this.line(buf.toString("utf8", start, end))
      } else {
        error = this.bad(++this.lines, "invalid UTF-8")
      }
      if (error !== undefined) return error
      start = end + 1
    }
    return undefined
  }

  /**
   * Valid UTF-8 lines through the native encoder, which parses and encodes the lines it can and
   * hands back the others (bad input, text that needs normalizing) for `line`.
   */
  private nativeBlock(native: NativeEncoder, buf: Buffer): BadInputError | undefined {
    const info = this.nativeLines
    let start = 0
    while (start < buf.length) {
      const done = native.encodeLines(buf, start, this.textKey, this.nativeIds, info)
      if (done === 0) {
        // The next line may have more ids than the buffer holds.
        this.nativeIds = new Uint32Array(this.nativeIds.length * 2)
        continue
      }
      const ids = this.nativeIds
      let at = 0
      for (let k = 0; k < done; k++) {
        const end = info[2 * k] as number
        const count = info[2 * k + 1] as number
        if (count >= 0) {
          this.lines++
          if (count === 0) this.emptyDocuments++
          this.writer.addDocument(ids, at, at + count)
          this.documents++
          at += count
        } else {
          const error = this.line(buf.toString("utf8", start, end))
          if (error !== undefined) return error
        }
        start = end + 1
      }
    }
    return undefined
  }

  private line(s: string): BadInputError | undefined {
    const line = ++this.lines
    let doc: unknown
    try {
      doc = JSON.parse(s)
    } catch (e) {
      try {
        if (!/NaN|Infinity/.test(s)) throw e
        doc = parsePythonJson(s)
      } catch {
        return this.bad(line, "malformed JSON", (e as Error).message)
      }
    }
    if (typeof doc !== "object" || doc === null || Array.isArray(doc)) return this.bad(line, "not a JSON object")
    const text = (doc as Record<string, unknown>)[this.textKey]
    if (typeof text !== "string") return this.bad(line, "missing or non-string text", `field "${this.textKey}"`)
    // Only a \u escape can produce a lone surrogate (Python's json.loads accepts it, the HF
    // tokenizer cannot encode it), so only lines with one need the check.
    if ((s.includes("\\ud") || s.includes("\\uD")) && !isWellFormed(text)) {
      return this.bad(line, "lone surrogate in text")
    }
    const ids = this.ids
    ids.clear()
    this.tokenizer.encodeInto(text, ids)
    if (ids.length > 0) ids.push(this.eod)
    else this.emptyDocuments++
    this.writer.addDocument(ids.ids, 0, ids.length)
    this.documents++
    return undefined
  }

  stats(): ShardStats {
    return {
      documents: this.documents,
      emptyDocuments: this.emptyDocuments,
      tokens: this.writer.tokenCount,
      bytesIn: this.bytesIn,
      badLines: { count: this.badCount, firstLines: [...this.firstBadLines] },
      truncatedInput: this.truncatedInput
    }
  }
}

const ioError = (path: string) => (e: unknown): ShardIoError =>
  new ShardIoError({ path, reason: e instanceof Error ? e.message : String(e) })

/**
 * Tokenizes one shard into `<outputPrefix>.bin/.idx`. On failure nothing is left under the final
 * names (the outputs are written to temporary names and renamed only at the end).
 */
export const tokenizeShard = (
  options: TokenizeShardOptions
): Effect.Effect<ShardStats, BadInputError | ShardIoError> =>
  Effect.scoped(Effect.gen(function*() {
    const { input, outputPrefix, tokenizer } = options
    const writer = yield* makeIndexedDatasetWriter(outputPrefix, dtypeForVocabSize(tokenizer.vocabSize)).pipe(
      Effect.mapError((e) => new ShardIoError({ path: e.path, reason: e.reason }))
    )
    const processor = new ShardProcessor(
      input,
      tokenizer,
      writer,
      options.onBadLine === "skip",
      options.textKey ?? "text"
    )
    const chunks = yield* Effect.acquireRelease(
      Effect.try({ try: () => jsonlChunks(input, options.zstd ?? "auto"), catch: ioError(input) }),
      (it) => Effect.promise(() => it.return(undefined)).pipe(Effect.ignore)
    )
    for (;;) {
      const next = yield* Effect.either(Effect.tryPromise({ try: () => chunks.next(), catch: (e) => e }))
      if (Either.isLeft(next)) {
        if (!(next.left instanceof ZstdStreamError)) return yield* ioError(input)(next.left)
        const error = processor.broken(next.left)
        if (error !== undefined) return yield* error
        break
      }
      if (next.right.done === true) {
        const error = processor.end()
        if (error !== undefined) return yield* error
        break
      }
      const chunk = next.right.value
      const error = processor.feed(chunk)
      if (error !== undefined) return yield* error
    }
    yield* Effect.try({ try: () => writer.finalize(), catch: ioError(outputPrefix) })
    return processor.stats()
  }))
