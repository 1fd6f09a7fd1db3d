/**
 * Token ids as people read them: the report decodes the ids in its specialization tables with the run's
 * own tokenizer.json (the one its corpus was tokenized with), and shows each as its quoted, escaped text
 * followed by the id: `" the" (279)`.
 */
import { Either } from "effect"
import * as fs from "node:fs"
import { tokenizerFromJson } from "../tokenize/Tokenizer.ts"
import { ReportError } from "./errors.ts"
import type { TokenDecoder } from "./model.ts"

/** Loads a tokenizer.json (the TypeScript encoder: only decoding is needed) as the report's decoder. */
export const tokenDecoderFromFile = (file: string, source: string): TokenDecoder => {
  let bytes: Buffer
  try {
    bytes = fs.readFileSync(file)
  } catch (e) {
    throw new ReportError({
      where: `${source} (${file})`,
      reason: `cannot read the tokenizer: ${(e as Error).message}`
    })
  }
  const loaded = tokenizerFromJson(bytes, file, { implementation: "js" })
  if (Either.isLeft(loaded)) throw new ReportError({ where: source, reason: loaded.left.message })
  const tokenizer = loaded.right
  const cache = new Map<number, string | undefined>()
  return {
    source,
    text: (id) => {
      if (!Number.isInteger(id) || id < 0 || id >= tokenizer.vocabSize) return undefined
      let text = cache.get(id)
      if (text === undefined) {
        text = tokenizer.decode([id])
        cache.set(id, text)
      }
      return text
    }
  }
}

/**
 * Characters that print as nothing or as a blank that is not a plain space (controls, format characters
 * such as zero-width spaces, line and paragraph separators, other spaces): shown as \uXXXX. JSON escapes
 * only U+0000..U+001F of them.
 */
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Z}]/gu

const escapeUnits = (c: string): string =>
  Array.from({ length: c.length }, (_, i) => `\\u${c.charCodeAt(i).toString(16).padStart(4, "0")}`).join("")

/** A token's text, quoted and escaped (quotes, backslashes, control and invisible characters). */
export const quoteToken = (text: string): string =>
  JSON.stringify(text).replace(INVISIBLE, (c) => (c === " " ? c : escapeUnits(c)))

/**
 * How a table shows a token id: `"text" (id)` with a decoder; `<no token> (id)` for an id beyond the
 * tokenizer's vocabulary (the model pads its embedding to a multiple of 128); the id alone without one.
 */
export const tokenLabel = (decoder: TokenDecoder | undefined, id: number): string => {
  if (decoder === undefined) return String(id)
  const text = decoder.text(id)
  return text === undefined ? `<no token> (${id})` : `${quoteToken(text)} (${id})`
}
