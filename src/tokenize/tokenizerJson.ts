/**
 * Validation of a Hugging Face `tokenizer.json` of the byte-level BPE family into the few facts
 * the encoder needs. Anything we do not implement is refused with the JSON path of the offending
 * component, rather than silently encoding differently from Hugging Face.
 */
import { Either, Schema } from "effect"

export class AddedToken extends Schema.Class<AddedToken>("AddedToken")({
  id: Schema.Int.pipe(Schema.nonNegative()),
  content: Schema.String.pipe(Schema.minLength(1)),
  single_word: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  lstrip: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  rstrip: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  normalized: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  special: Schema.optionalWith(Schema.Boolean, { default: () => false })
}) {}

export const NormalizationForm = Schema.Literal("NFC", "NFD", "NFKC", "NFKD")
export type NormalizationForm = typeof NormalizationForm.Type

/** Ids the post-processor puts around a single sequence (Megatron encodes with add_special_tokens). */
export interface SingleTemplate {
  readonly prefix: ReadonlyArray<number>
  readonly suffix: ReadonlyArray<number>
}

export interface TokenizerSpec {
  readonly normalizers: ReadonlyArray<NormalizationForm>
  readonly addPrefixSpace: boolean
  readonly useRegex: boolean
  readonly template: SingleTemplate
  readonly vocab: ReadonlyMap<string, number>
  /** Merges as pairs of token strings, in rank order. */
  readonly merges: ReadonlyArray<readonly [string, string]>
  readonly ignoreMerges: boolean
  readonly addedTokens: ReadonlyArray<AddedToken>
}

type Json = unknown
type Obj = Record<string, Json>

const isObj = (v: Json): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v)

class SpecError {
  constructor(readonly reason: string) {}
}
const fail = (reason: string): never => {
  throw new SpecError(reason)
}

const typeOf = (v: Json, where: string): string => {
  if (!isObj(v) || typeof v.type !== "string") return fail(`${where}: expected an object with a string "type"`)
  return v.type
}

const flag = (o: Obj, key: string, where: string, dflt: boolean): boolean => {
  const v = o[key]
  if (v === undefined || v === null) return dflt
  if (typeof v !== "boolean") return fail(`${where}.${key}: expected a boolean`)
  return v
}

const normalizers = (v: Json, where: string): Array<NormalizationForm> => {
  if (v === null || v === undefined) return []
  const type = typeOf(v, where)
  if (type === "Sequence") {
    const list = (v as Obj).normalizers
    if (!Array.isArray(list)) return fail(`${where}.normalizers: expected an array`)
    return list.flatMap((n, i) => normalizers(n, `${where}.normalizers[${i}]`))
  }
  if (Schema.is(NormalizationForm)(type)) return [type]
  return fail(`${where}: unsupported normalizer type "${type}" (supported: NFC, NFD, NFKC, NFKD, Sequence)`)
}

const preTokenizer = (v: Json, where: string): { addPrefixSpace: boolean; useRegex: boolean } => {
  const type = typeOf(v, where)
  if (type === "Sequence") {
    const list = (v as Obj).pretokenizers
    if (Array.isArray(list) && list.length === 1) return preTokenizer(list[0], `${where}.pretokenizers[0]`)
    return fail(`${where}: unsupported pre_tokenizer Sequence (only a single ByteLevel is supported)`)
  }
  if (type !== "ByteLevel") return fail(`${where}: unsupported pre_tokenizer type "${type}" (supported: ByteLevel)`)
  const o = v as Obj
  return { addPrefixSpace: flag(o, "add_prefix_space", where, true), useRegex: flag(o, "use_regex", where, true) }
}

const template = (v: Json, where: string): SingleTemplate => {
  if (v === null || v === undefined) return { prefix: [], suffix: [] }
  const type = typeOf(v, where)
  const o = v as Obj
  if (type === "ByteLevel") return { prefix: [], suffix: [] }
  if (type === "Sequence") {
    const list = o.processors
    if (!Array.isArray(list)) return fail(`${where}.processors: expected an array`)
    const parts = list.map((p, i) => template(p, `${where}.processors[${i}]`))
    return { prefix: parts.flatMap((p) => p.prefix), suffix: parts.flatMap((p) => p.suffix) }
  }
  if (type !== "TemplateProcessing") {
    return fail(`${where}: unsupported post_processor type "${type}" (supported: ByteLevel, TemplateProcessing)`)
  }
  const single = o.single
  const specials = o.special_tokens
  if (!Array.isArray(single) || !isObj(specials)) return fail(`${where}: expected "single" and "special_tokens"`)
  const prefix: Array<number> = []
  const suffix: Array<number> = []
  let seenA = false
  single.forEach((item: Json, i) => {
    const at = `${where}.single[${i}]`
    if (isObj(item) && isObj(item.Sequence)) {
      if (item.Sequence.id !== "A" || seenA) return fail(`${at}: only one sequence "A" is supported`)
      seenA = true
    } else if (isObj(item) && isObj(item.SpecialToken)) {
      const spec = specials[String(item.SpecialToken.id)]
      if (!isObj(spec) || !Array.isArray(spec.ids)) return fail(`${at}: unknown special token ${item.SpecialToken.id}`)
      for (const id of spec.ids) {
        if (typeof id !== "number") return fail(`${at}: special token ids must be numbers`)
        ;(seenA ? suffix : prefix).push(id)
      }
    } else {
      fail(`${at}: expected {"Sequence": ...} or {"SpecialToken": ...}`)
    }
  })
  return { prefix, suffix }
}

const decoder = (v: Json, where: string): void => {
  if (v === null || v === undefined) return
  const type = typeOf(v, where)
  if (type !== "ByteLevel") fail(`${where}: unsupported decoder type "${type}" (supported: ByteLevel)`)
}

const model = (v: Json, where: string) => {
  const type = typeOf(v, where)
  if (type !== "BPE") return fail(`${where}: unsupported model type "${type}" (supported: BPE)`)
  const o = v as Obj
  if (o.dropout !== undefined && o.dropout !== null) fail(`${where}.dropout: BPE dropout is not supported`)
  for (const key of ["continuing_subword_prefix", "end_of_word_suffix"]) {
    if (o[key] !== undefined && o[key] !== null && o[key] !== "") fail(`${where}.${key}: not supported`)
  }
  if (flag(o, "byte_fallback", where, false)) fail(`${where}.byte_fallback: not supported by byte-level BPE`)
  if (!isObj(o.vocab)) return fail(`${where}.vocab: expected an object of token -> id`)
  const vocab = new Map<string, number>()
  for (const [token, id] of Object.entries(o.vocab)) {
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0) {
      return fail(`${where}.vocab[${JSON.stringify(token)}]: expected a non-negative integer id`)
    }
    vocab.set(token, id)
  }
  if (!Array.isArray(o.merges)) return fail(`${where}.merges: expected an array`)
  const merges = o.merges.map((m: Json, i): readonly [string, string] => {
    // Two serialisations exist: "a b" strings (older files, GPT-NeoX) and ["a", "b"] pairs.
    if (typeof m === "string") {
      const space = m.indexOf(" ", 1)
      if (space < 0) return fail(`${where}.merges[${i}]: expected "left right"`)
      return [m.slice(0, space), m.slice(space + 1)]
    }
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === "string" && typeof m[1] === "string") {
      return [m[0], m[1]]
    }
    return fail(`${where}.merges[${i}]: expected "left right" or ["left", "right"]`)
  })
  return { vocab, merges, ignoreMerges: flag(o, "ignore_merges", where, false) }
}

const addedTokens = (v: Json): Array<AddedToken> => {
  if (v === undefined || v === null) return []
  if (!Array.isArray(v)) return fail(`added_tokens: expected an array`)
  return v.map((t: Json, i) => {
    const decoded = Schema.decodeUnknownEither(AddedToken)(t)
    if (Either.isLeft(decoded)) return fail(`added_tokens[${i}]: ${decoded.left.message}`)
    const token = decoded.right
    for (const key of ["single_word", "lstrip", "rstrip"] as const) {
      if (token[key]) fail(`added_tokens[${i}].${key}: true is not supported`)
    }
    return token
  })
}

/** Validates a parsed tokenizer.json; Left carries a reason naming the offending key. */
export const parseTokenizerJson = (json: Json): Either.Either<TokenizerSpec, string> => {
  try {
    if (!isObj(json)) return fail("expected a JSON object")
    const m = model(json.model, "model")
    const pre = preTokenizer(json.pre_tokenizer, "pre_tokenizer")
    decoder(json.decoder, "decoder")
    return Either.right({
      normalizers: normalizers(json.normalizer, "normalizer"),
      ...pre,
      template: template(json.post_processor, "post_processor"),
      ...m,
      addedTokens: addedTokens(json.added_tokens)
    })
  } catch (e) {
    if (e instanceof SpecError) return Either.left(e.reason)
    throw e
  }
}
