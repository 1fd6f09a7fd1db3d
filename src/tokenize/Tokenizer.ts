/**
 * A byte-level BPE tokenizer loaded from a Hugging Face `tokenizer.json` (GPT-2 / GPT-NeoX family)
 * that gives the same ids as Hugging Face's `tokenizers`: added tokens are split off first
 * (non-normalized ones on the raw text, normalized ones after normalization), then the GPT-2 regex
 * pre-tokenizer (hand-written scanner, HF's Unicode classes), then BPE per piece with a cache.
 *
 * Two implementations of the same algorithm: the native encoder (native/tokenizer, C++) when its
 * addon is built, which then does everything but normalization, and this file's TypeScript, the
 * portable fallback.
 */
import { Effect, Either } from "effect"
import { createHash } from "node:crypto"
import * as fs from "node:fs/promises"
import { MergeTable, mergeWord } from "./bpe.ts"
import { BYTE_TO_CHAR, CHAR_TO_BYTE, symbolsToBytes } from "./byteLevel.ts"
import { TokenizerLoadError } from "./errors.ts"
import { nativeAddonStatus, type NativeEncoderConfig } from "./nativeAddon.ts"
import { NativeEncoder } from "./NativeEncoder.ts"
import { HASH_PRIME, HASH_SEED, MAX_IDS, MAX_KEY_CHARS, PieceCache } from "./PieceCache.ts"
import { TokenBuffer } from "./TokenBuffer.ts"
import { type NormalizationForm, parseTokenizerJson, type TokenizerSpec } from "./tokenizerJson.ts"
import { CODE_POINT_CLASS, isNfcInert, NFC_INERT, WHITESPACE } from "./unicodeClasses.ts"

/** "auto": native when its addon is built (and FLAME_TOKENIZER is not "js"), else TypeScript. */
export type Implementation = "auto" | "native" | "js"

export interface LoadOptions {
  /** Token appended after each document; Megatron uses the tokenizer's EOS, "<|endoftext|>" for GPT-NeoX. */
  readonly eodToken?: string
  /** Which encoder to use; "native" fails to load when the addon is not available. Default "auto". */
  readonly implementation?: Implementation
}

const LONG_CACHE_LIMIT = 1 << 16
/** Longer pieces (base64 blobs, long runs) are rarely repeated. */
const LONG_CACHE_MAX_PIECE = 256
const APOSTROPHE = 0x27
const SPACE = 0x20

const BEYOND_U02FF = /[\u0300-\uffff]/

let nativeClasses: Uint8Array | undefined
/** The class table the native encoder takes: class | 4 where NFC leaves the code point alone. */
const nativeClassTable = (): Uint8Array => {
  if (nativeClasses === undefined) {
    nativeClasses = new Uint8Array(0x110000)
    for (let cp = 0; cp < 0x110000; cp++) {
      nativeClasses[cp] = (CODE_POINT_CLASS[cp] as number) | ((NFC_INERT[cp] as number) << 2)
    }
  }
  return nativeClasses
}

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/** Leftmost-longest matcher: alternatives sorted longest first make JavaScript's leftmost-first agree. */
const addedTokenPattern = (contents: ReadonlyArray<string>): RegExp | undefined =>
  contents.length === 0 ? undefined : new RegExp(
    [...new Set(contents)].sort((a, b) => b.length - a.length || (a < b ? -1 : 1)).map(escapeRegExp).join("|"),
    "gu"
  )

/** Length of a GPT-2 contraction ('s 't 're 've 'm 'll 'd) starting at `i`, or 0. */
const contractionLength = (s: string, i: number, n: number): number => {
  if (i + 1 >= n) return 0
  const c1 = s.charCodeAt(i + 1)
  if (c1 === 0x73 || c1 === 0x74 || c1 === 0x6d || c1 === 0x64) return 2 // s t m d
  if (i + 2 >= n) return 0
  const c2 = s.charCodeAt(i + 2)
  if ((c1 === 0x72 || c1 === 0x76) && c2 === 0x65) return 3 // re ve
  if (c1 === 0x6c && c2 === 0x6c) return 3 // ll
  return 0
}

export class ByteLevelBpe {
  /** len(tokenizer): distinct tokens including added ones (50277 for GPT-NeoX-20B). */
  readonly vocabSize: number
  readonly eodId: number
  /** sha256 of the tokenizer file's bytes, for cache fingerprints. */
  readonly contentHash: string
  /** The encoder in use; both give identical ids. */
  readonly implementation: "native" | "js"
  /** @internal the C++ encoder, when in use (tokenizeShard hands it whole blocks of lines). */
  readonly native: NativeEncoder | undefined

  private readonly normalizers: ReadonlyArray<NormalizationForm>
  private readonly addPrefixSpace: boolean
  private readonly useRegex: boolean
  private readonly prefixIds: ReadonlyArray<number>
  private readonly suffixIds: ReadonlyArray<number>
  private readonly ignoreMerges: boolean
  private readonly vocab: ReadonlyMap<string, number>
  private readonly idToToken: ReadonlyArray<string | undefined>
  private readonly addedIds: ReadonlyMap<string, number>
  private readonly rawAdded: RegExp | undefined
  private readonly rawAddedFirstChars: ReadonlyArray<string>
  private readonly normalizedAdded: RegExp | undefined
  private readonly byteIds: Int32Array
  private readonly merges: MergeTable
  private readonly cache = new PieceCache()
  private readonly longCache = new Map<string, Int32Array>()
  private scratchBytes = new Uint8Array(256)
  private scratchIds = new Int32Array(256)
  private readonly utf8 = new TextEncoder()

  constructor(spec: TokenizerSpec, contentHash: string, options: LoadOptions = {}) {
    this.contentHash = contentHash
    this.normalizers = spec.normalizers
    this.addPrefixSpace = spec.addPrefixSpace
    this.useRegex = spec.useRegex
    this.prefixIds = spec.template.prefix
    this.suffixIds = spec.template.suffix
    this.ignoreMerges = spec.ignoreMerges
    this.vocab = spec.vocab

    const all = new Map(spec.vocab)
    const added = new Map<string, number>()
    let nextId = spec.vocab.size
    for (const t of spec.addedTokens) {
      const modelId = spec.vocab.get(t.content)
      // HF keeps the model's id for a token already in the vocabulary and numbers new ones from
      // the end of it, whatever the file says; refuse files where that would differ.
      const expected = modelId ?? (all.has(t.content) ? all.get(t.content) : nextId++)
      if (t.id !== expected) {
        throw new Error(
          `added token ${JSON.stringify(t.content)} has id ${t.id} but Hugging Face would give it ${expected}`
        )
      }
      all.set(t.content, t.id)
      added.set(t.content, t.id)
    }
    this.vocabSize = all.size
    this.addedIds = added
    const idToToken: Array<string | undefined> = []
    for (const [token, id] of all) idToToken[id] = token
    this.idToToken = idToToken

    // Normalized added tokens are matched on normalized text, so match their normalized form.
    const normalizedTokens = spec.addedTokens.filter((t) => t.normalized)
    const normalizedContents = normalizedTokens.map((t) => this.normalize(t.content))
    normalizedContents.forEach((c, i) => added.set(c, (normalizedTokens[i] as { id: number }).id))
    const rawContents = spec.addedTokens.filter((t) => !t.normalized).map((t) => t.content)
    this.rawAdded = addedTokenPattern(rawContents)
    this.rawAddedFirstChars = [...new Set(rawContents.map((c) => String.fromCodePoint(c.codePointAt(0) as number)))]
    this.normalizedAdded = addedTokenPattern(normalizedContents)

    this.byteIds = new Int32Array(256).fill(-1)
    for (let b = 0; b < 256; b++) this.byteIds[b] = spec.vocab.get(BYTE_TO_CHAR[b] as string) ?? -1
    const pairs: Array<readonly [number, number, number]> = []
    spec.merges.forEach(([a, b], rank) => {
      const ia = spec.vocab.get(a)
      const ib = spec.vocab.get(b)
      const merged = spec.vocab.get(a + b)
      if (ia === undefined || ib === undefined || merged === undefined) {
        throw new Error(`merges[${rank}] "${a} ${b}": a part or the merged token is not in the vocabulary`)
      }
      pairs.push([ia, ib, merged])
    })
    this.merges = new MergeTable(pairs)

    const eodToken = options.eodToken ?? "<|endoftext|>"
    const eod = all.get(eodToken)
    if (eod === undefined) throw new Error(`EOD token ${JSON.stringify(eodToken)} is not in the vocabulary`)
    this.eodId = eod

    const wanted = options.implementation ?? "auto"
    const addon = wanted === "js" ? undefined : nativeAddonStatus()
    if (wanted === "native" && addon?._tag !== "Loaded") {
      throw new Error(`the native encoder is not available: ${addon?._tag === "Unavailable" ? addon.reason : ""}`)
    }
    this.native = addon?._tag === "Loaded"
      ? new NativeEncoder(addon.addon, this.nativeConfig(spec, pairs, rawContents, normalizedContents))
      : undefined
    this.implementation = this.native === undefined ? "js" : "native"
  }

  private nativeConfig(
    spec: TokenizerSpec,
    pairs: ReadonlyArray<readonly [number, number, number]>,
    rawContents: ReadonlyArray<string>,
    normalizedContents: ReadonlyArray<string>
  ): NativeEncoderConfig {
    const ids = (contents: ReadonlyArray<string>) => Uint32Array.from(contents, (c) => this.addedIds.get(c) as number)
    const wholeBytes: Array<number> = []
    const wholeEnds: Array<number> = []
    const wholeIds: Array<number> = []
    if (spec.ignoreMerges) {
      for (const [token, id] of spec.vocab) {
        const bytes = symbolsToBytes(token)
        if (bytes === undefined) continue
        for (const b of bytes) wholeBytes.push(b)
        wholeEnds.push(wholeBytes.length)
        wholeIds.push(id)
      }
    }
    return {
      classes: nativeClassTable(),
      byteIds: this.byteIds,
      merges: Int32Array.from(pairs.flat()),
      rawAdded: rawContents,
      rawAddedIds: ids(rawContents),
      normalizedAdded: normalizedContents,
      normalizedAddedIds: ids(normalizedContents),
      wholeTokenBytes: Uint8Array.from(wholeBytes),
      wholeTokenEnds: Uint32Array.from(wholeEnds),
      wholeTokenIds: Uint32Array.from(wholeIds),
      prefix: Uint32Array.from(this.prefixIds),
      suffix: Uint32Array.from(this.suffixIds),
      addPrefixSpace: this.addPrefixSpace,
      useRegex: this.useRegex,
      ignoreMerges: this.ignoreMerges,
      normalization: this.normalizers.length === 0 ? 0 : this.normalizers.every((f) => f === "NFC") ? 1 : 2,
      eod: this.eodId
    }
  }

  /** Token id of a token string (added tokens included), if any. */
  tokenToId(token: string): number | undefined {
    return this.addedIds.get(token) ?? this.vocab.get(token)
  }

  /** Ids of `text`, as HF `tokenizer(text).input_ids` (post-processor template included). */
  encode(text: string): Uint32Array {
    const out = new TokenBuffer(Math.max(16, text.length >> 1))
    this.encodeInto(text, out)
    return out.toArray()
  }

  /** Appends the ids of `text` to `out`; `text` must be well-formed UTF-16 (no lone surrogates). */
  encodeInto(text: string, out: TokenBuffer): void {
    for (const id of this.prefixIds) out.push(id)
    const re = this.rawAdded
    if (this.native !== undefined && this.native.encodeText(text, out)) {
      // Done natively: the text needed no normalization.
    } else if (re === undefined || !this.mayContainAdded(text)) {
      this.encodeSegment(text, out)
    } else {
      let last = 0
      re.lastIndex = 0
      for (let m = re.exec(text); m !== null; m = re.exec(text)) {
        if (m.index > last) this.encodeSegment(text.slice(last, m.index), out)
        out.push(this.addedIds.get(m[0]) as number)
        last = m.index + m[0].length
      }
      if (last < text.length) this.encodeSegment(text.slice(last), out)
    }
    for (const id of this.suffixIds) out.push(id)
  }

  /** Cheap pre-check: the usual special tokens start with "<", which most documents lack. */
  private mayContainAdded(text: string): boolean {
    for (const c of this.rawAddedFirstChars) if (text.includes(c)) return true
    return false
  }

  private normalize(s: string): string {
    let out = s
    for (const form of this.normalizers) {
      // Most text is already in NFC and provably so from a table; skipping ICU is a large saving.
      if (form === "NFC" && (!BEYOND_U02FF.test(out) || isNfcInert(out))) continue
      out = out.normalize(form)
    }
    return out
  }

  private encodeSegment(raw: string, out: TokenBuffer): void {
    const s = this.normalize(raw)
    const re = this.normalizedAdded
    if (re === undefined) return this.preTokenize(s, out)
    let last = 0
    re.lastIndex = 0
    for (let m = re.exec(s); m !== null; m = re.exec(s)) {
      if (m.index > last) this.preTokenize(s.slice(last, m.index), out)
      out.push(this.addedIds.get(m[0]) as number)
      last = m.index + m[0].length
    }
    if (last < s.length) this.preTokenize(last === 0 ? s : s.slice(last), out)
  }

  /** The GPT-2 pattern 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ by hand. */
  private preTokenize(piece: string, out: TokenBuffer): void {
    if (this.native !== undefined) return this.native.encodeNormalized(piece, out)
    const s = this.addPrefixSpace && piece.charCodeAt(0) !== SPACE ? " " + piece : piece
    const n = s.length
    if (!this.useRegex) return this.encodePiece(s, 0, n, out, -1)
    const classes = CODE_POINT_CLASS
    let i = 0
    while (i < n) {
      const c = s.charCodeAt(i)
      if (c === APOSTROPHE) {
        const m = contractionLength(s, i, n)
        if (m > 0) {
          this.encodePiece(s, i, i + m, out, -1)
          i += m
          continue
        }
      }
      // Class of the run: the char after a single leading space joins that space to its run.
      let k = i
      let cls = classes[c] as number
      if (c >= 0xd800 && c <= 0xdbff) cls = classes[s.codePointAt(i) as number] as number
      if (c === SPACE && i + 1 < n) {
        const c1 = s.charCodeAt(i + 1)
        const cls1 = (c1 >= 0xd800 && c1 <= 0xdbff ? classes[s.codePointAt(i + 1) as number] : classes[c1]) as number
        if (cls1 !== WHITESPACE) {
          k = i + 1
          cls = cls1
        }
      }
      if (cls === WHITESPACE) {
        // Whitespace is BMP-only, one code unit per char.
        let j = i + 1
        while (j < n && classes[s.charCodeAt(j)] === WHITESPACE) j++
        // \s+(?!\S): a run followed by a non-space leaves its last char to the next piece.
        if (j < n && j - i > 1) j--
        this.encodePiece(s, i, j, out, -1)
        i = j
        continue
      }
      // The run's cache hash is computed while scanning it.
      let h = k > i ? Math.imul(HASH_SEED ^ SPACE, HASH_PRIME) : HASH_SEED
      let j = k
      while (j < n) {
        const cj = s.charCodeAt(j)
        if (cj >= 0xd800 && cj <= 0xdbff && j + 1 < n) {
          const cp = s.codePointAt(j) as number
          if (classes[cp] !== cls) break
          h = Math.imul(h ^ cj, HASH_PRIME)
          if (cp > 0xffff) h = Math.imul(h ^ s.charCodeAt(j + 1), HASH_PRIME)
          j += cp > 0xffff ? 2 : 1
        } else {
          if ((classes[cj] as number) !== cls) break
          h = Math.imul(h ^ cj, HASH_PRIME)
          j++
        }
      }
      this.encodePiece(s, i, j, out, PieceCache.finishHash(h, j - i))
      i = j
    }
  }

  /** Appends the ids of piece `s[start, end)`; `knownHash` is its cache hash, or -1. */
  private encodePiece(s: string, start: number, end: number, out: TokenBuffer, knownHash = -1): void {
    if (end - start === 1) {
      // One ASCII char is one byte symbol: nothing to merge or look up (a tenth of all pieces).
      const c = s.charCodeAt(start)
      const id = c < 0x80 ? this.byteIds[c] as number : -1
      if (id >= 0) return out.push(id)
    }
    if (end - start <= MAX_KEY_CHARS) {
      const cache = this.cache
      const hash = knownHash === -1 ? PieceCache.hash(s, start, end) : knownHash
      let base = cache.find(s, start, end, hash)
      if (base < 0) {
        // Short pieces with many ids (digits, CJK) live in the Map cache.
        if (this.longCache.size > 0 && this.longCache.has(s.slice(start, end))) {
          return this.encodeLongPiece(s, start, end, out)
        }
        const n = this.bpe(s, start, end)
        if (n > MAX_IDS) return this.encodeLongPiece(s, start, end, out, n)
        base = cache.insert(s, start, end, hash, base, this.scratchIds, n)
      }
      const count = cache.idCount(base)
      let at = out.length
      if (at + count > out.ids.length) out.reserve(count)
      const dst = out.ids
      const table = cache.front
      const from = cache.idsAt(base)
      for (let k = 0; k < count; k++) dst[at++] = table[from + k] as number
      out.length = at
      return
    }
    this.encodeLongPiece(s, start, end, out)
  }

  /** Pieces too long for the inline cache (about 1% of natural text) go through a Map. */
  private encodeLongPiece(s: string, start: number, end: number, out: TokenBuffer, computed = -1): void {
    const key = s.slice(start, end)
    let ids = computed < 0 ? this.longCache.get(key) : undefined
    if (ids === undefined) {
      const n = computed < 0 ? this.bpe(s, start, end) : computed
      ids = this.scratchIds.slice(0, n)
      if (key.length <= LONG_CACHE_MAX_PIECE) {
        if (this.longCache.size >= LONG_CACHE_LIMIT) this.longCache.clear()
        this.longCache.set(key, ids)
      }
    }
    out.pushAll(ids)
  }

  /** BPE of `s[start, end)` into scratchIds; returns the id count. */
  private bpe(s: string, start: number, end: number): number {
    if (this.scratchBytes.length < (end - start) * 3) {
      this.scratchBytes = new Uint8Array((end - start) * 3)
      this.scratchIds = new Int32Array((end - start) * 3)
    }
    const ids = this.scratchIds
    if (!this.ignoreMerges) {
      // ASCII pieces (most of them) map char -> byte symbol directly, without UTF-8 encoding.
      let n = 0
      let i = start
      for (; i < end; i++) {
        const c = s.charCodeAt(i)
        if (c >= 0x80) break
        const id = this.byteIds[c] as number
        if (id >= 0) ids[n++] = id
      }
      if (i === end) return mergeWord(this.merges, ids, n)
    }
    const piece = s.slice(start, end)
    const { written } = this.utf8.encodeInto(piece, this.scratchBytes)
    const bytes = this.scratchBytes
    if (this.ignoreMerges) {
      let symbols = ""
      for (let i = 0; i < written; i++) symbols += BYTE_TO_CHAR[bytes[i] as number]
      const whole = this.vocab.get(symbols)
      if (whole !== undefined) {
        ids[0] = whole
        return 1
      }
    }
    let n = 0
    for (let i = 0; i < written; i++) {
      const id = this.byteIds[bytes[i] as number] as number
      // Without an unk token HF silently drops symbols missing from the vocabulary.
      if (id >= 0) ids[n++] = id
    }
    return mergeWord(this.merges, ids, n)
  }

  /** Text of `ids` as HF decode(ids, skip_special_tokens=false) with the ByteLevel decoder. */
  decode(ids: ArrayLike<number>): string {
    const bytes: Array<number> = []
    const utf8 = new TextEncoder()
    for (let i = 0; i < ids.length; i++) {
      const token = this.idToToken[ids[i] as number]
      if (token === undefined) continue
      const start = bytes.length
      let allSymbols = true
      for (const ch of token) {
        const b = CHAR_TO_BYTE.get(ch)
        if (b === undefined) {
          allSymbols = false
          break
        }
        bytes.push(b)
      }
      // A token with a non-symbol char (e.g. the whitespace runs) is taken as its raw UTF-8.
      if (!allSymbols) {
        bytes.length = start
        for (const b of utf8.encode(token)) bytes.push(b)
      }
    }
    // ignoreBOM: a leading U+FEFF is text here, not a byte-order mark.
    return new TextDecoder("utf-8", { ignoreBOM: true }).decode(Uint8Array.from(bytes))
  }
}

/** Builds the tokenizer from the text of a tokenizer.json; `path` only names it in errors. */
export const tokenizerFromJson = (
  text: string | Uint8Array,
  path: string,
  options: LoadOptions = {}
): Either.Either<ByteLevelBpe, TokenizerLoadError> => {
  const hash = createHash("sha256").update(text).digest("hex")
  let json: unknown
  try {
    json = JSON.parse(typeof text === "string" ? text : new TextDecoder().decode(text))
  } catch (e) {
    return Either.left(new TokenizerLoadError({ path, reason: `not valid JSON: ${(e as Error).message}` }))
  }
  return Either.flatMap(
    Either.mapLeft(parseTokenizerJson(json), (reason) => new TokenizerLoadError({ path, reason })),
    (spec) =>
      Either.try({
        try: () => new ByteLevelBpe(spec, hash, options),
        catch: (e) => new TokenizerLoadError({ path, reason: (e as Error).message })
      })
  )
}

/** Reads and validates a Hugging Face tokenizer.json of the byte-level BPE family. */
export const loadTokenizer = (
  path: string,
  options: LoadOptions = {}
): Effect.Effect<ByteLevelBpe, TokenizerLoadError> =>
  Effect.tryPromise({
    try: () => fs.readFile(path),
    catch: (e) => new TokenizerLoadError({ path, reason: `cannot read: ${(e as Error).message}` })
  }).pipe(Effect.flatMap((bytes) => tokenizerFromJson(bytes, path, options)))
