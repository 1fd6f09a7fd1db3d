/**
 * Seeded generator of documents meant to break a byte-level BPE re-implementation: whitespace
 * runs of every kind, CRLF, tabs, special tokens inside words, accents composed and decomposed,
 * CJK, emoji with ZWJ and skin tones, combining marks, very long words, digits, contractions, and
 * the code points where Oniguruma and JavaScript disagree on \s, \p{L} and \p{N}.
 */
import { makeRng, type Rng } from "../../../scripts/corpus/prng.ts"

const WORDS = ["the", "The", "hello", "world", "it", "don", "a", "I", "x", "café", "naïve", "über", "Ελλάδα", "Москва"]
const SPACES = [
  " ",
  "  ",
  "   ",
  "\t",
  "\n",
  "\r\n",
  "\r",
  "\n\n",
  " \n",
  "\n ",
  "\u00a0",
  "\u3000",
  "\u2003",
  "\u0085",
  "\f",
  "\v"
]
const PUNCT = [
  ".",
  ",",
  "!",
  "?",
  "'",
  "\"",
  "(",
  ")",
  "...",
  "--",
  "'s",
  "'t",
  "'re",
  "'ve",
  "'m",
  "'ll",
  "'d",
  "'S",
  "''",
  "’"
]
const SPECIALS = ["<|endoftext|>", "<|padding|>", "<|endoftext|", "<|", "|>", "<|endoftext|><|padding|>"]
const CJK = ["東京", "中文字符", "한국어", "ひらがな", "カタカナ"]
const EMOJI = ["😀", "👍🏽", "👩‍👩‍👧‍👦", "🏳️‍🌈", "🇯🇵", "❤️", "🤷‍♀️", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "𐍈"]
const COMBINING = [
  "e\u0301",
  "a\u0308",
  "o\u0302\u0323",
  "\u0301",
  "n\u0303",
  "\u1100\u1161\u11a8",
  "A\u030a",
  "\u0344"
]
const ODD = [
  "\ufeff",
  "\u200b",
  "\u200d",
  "\u0000",
  "\u007f",
  "\u0085x",
  "\u088f",
  "\ua7ce",
  "\u2028",
  "½",
  "²",
  "٣",
  "Ⅻ"
]
const DIGITS = ["0", "42", "3.14159", "2024-01-01", "1,000,000", "٣٤", "१२३"]

const token = (rng: Rng): string => {
  switch (rng.int(12)) {
    case 0:
    case 1:
    case 2:
      return rng.pick(WORDS)
    case 3:
      return rng.pick(SPACES).repeat(1 + (rng.next() < 0.2 ? rng.int(30) : 0))
    case 4:
      return rng.pick(PUNCT)
    case 5:
      return rng.next() < 0.3 ? rng.pick(SPECIALS) : rng.pick(DIGITS)
    case 6:
      return rng.pick(CJK)
    case 7:
      return rng.pick(EMOJI)
    case 8:
      return rng.pick(COMBINING)
    case 9:
      return rng.pick(ODD)
    case 10: {
      // A random code point from the BMP or the astral planes, surrogates excluded.
      const cp = rng.next() < 0.7 ? rng.int(0xd800) : 0xe000 + rng.int(0x110000 - 0xe000)
      return String.fromCodePoint(cp)
    }
    default: {
      // Long words: letters, digits or punctuation, sometimes thousands of chars.
      const unit = rng.pick(["ab", "x", "Zz9", "é", "-", "東", "0"])
      return unit.repeat(rng.next() < 0.1 ? 500 + rng.int(3000) : 5 + rng.int(40))
    }
  }
}

export const adversarialDocument = (rng: Rng): string => {
  const n = rng.int(40)
  let s = ""
  for (let i = 0; i < n; i++) {
    s += token(rng)
    if (rng.next() < 0.6) s += " "
  }
  return s
}

export const adversarialDocuments = (seed: number, count: number): Array<string> => {
  const rng = makeRng(seed)
  return Array.from({ length: count }, () => adversarialDocument(rng))
}
