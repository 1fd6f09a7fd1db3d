/**
 * Character classes of the GPT-2 pre-tokenizer regex, per code point, as Hugging Face's
 * `tokenizers` (Oniguruma) sees them; see scripts/make-unicode-classes.ts for why they are not
 * JavaScript's own \p{L} / \p{N} / \s.
 */
import { CLASS_RUNS } from "./unicodeClasses.generated.ts"

export const OTHER = 0
export const LETTER = 1
export const NUMBER = 2
export const WHITESPACE = 3

const expand = (): Uint8Array => {
  const table = new Uint8Array(0x110000)
  let cp = 0
  for (const run of CLASS_RUNS.split(",")) {
    const cls = run.charCodeAt(0) - 48
    const length = parseInt(run.slice(1), 36)
    table.fill(cls, cp, cp + length)
    cp += length
  }
  if (cp !== 0x110000) throw new Error(`corrupt unicode class table: covers ${cp} code points`)
  return table
}

/** Class of every code point, indexed by code point. */
export const CODE_POINT_CLASS: Uint8Array = expand()
