/**
 * Character classes of the GPT-2 pre-tokenizer regex, per code point, as Hugging Face's
 * `tokenizers` (Oniguruma) sees them; see scripts/make-unicode-classes.ts for why they are not
 * JavaScript's own \p{L} / \p{N} / \s. Also which code points NFC leaves unchanged in any context.
 */
import { CLASS_RUNS, NFC_INERT_RUNS } from "./unicodeClasses.generated.ts"

export const OTHER = 0
export const LETTER = 1
export const NUMBER = 2
export const WHITESPACE = 3

const expand = (runs: string, name: string): Uint8Array => {
  const table = new Uint8Array(0x110000)
  let cp = 0
  for (const run of runs.split(",")) {
    const value = run.charCodeAt(0) - 48
    const length = parseInt(run.slice(1), 36)
    table.fill(value, cp, cp + length)
    cp += length
  }
  if (cp !== 0x110000) throw new Error(`corrupt ${name} table: covers ${cp} code points`)
  return table
}

/** Class of every code point, indexed by code point. */
export const CODE_POINT_CLASS: Uint8Array = expand(CLASS_RUNS, "unicode class")

/**
 * 1 where the code point has NFC_Quick_Check = Yes and combining class 0 (in both Hugging Face's
 * and Node's Unicode data): a string made only of such code points is already in NFC.
 */
export const NFC_INERT: Uint8Array = expand(NFC_INERT_RUNS, "NFC inert")

/** Whether NFC leaves `s` unchanged, decided from the table (false may still be unchanged). */
export const isNfcInert = (s: string): boolean => {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    // Below U+0300 every code point is inert.
    if (c < 0x300) continue
    const cp = c >= 0xd800 && c <= 0xdbff ? s.codePointAt(i) as number : c
    if (NFC_INERT[cp] === 0) return false
    if (cp > 0xffff) i++
  }
  return true
}
