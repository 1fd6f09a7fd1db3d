/**
 * A larger, less repetitive corpus for the benchmarks: Zipf-distributed draws from 60k synthetic
 * words (so the piece cache misses about as often as on web text), punctuation, numbers, some
 * accents, CJK and emoji, and DCLM-sized metadata on every line.
 */
import { makeRng, type Rng } from "../../scripts/corpus/prng.ts"

const SYLLABLES = [
  "ba",
  "ce",
  "di",
  "fo",
  "gu",
  "ha",
  "je",
  "ki",
  "lo",
  "mu",
  "na",
  "pe",
  "qui",
  "ro",
  "su",
  "ta",
  "ve",
  "wi",
  "xo",
  "yu",
  "za",
  "th",
  "st",
  "er",
  "in",
  "on",
  "an",
  "re",
  "at",
  "en",
  "ing",
  "tion",
  "ly",
  "ment",
  "ous",
  "é",
  "ü"
]

const makeWords = (rng: Rng, n: number): Array<string> =>
  Array.from({ length: n }, () => {
    let w = ""
    const k = 1 + rng.int(4)
    for (let i = 0; i < k; i++) w += rng.pick(SYLLABLES)
    return rng.next() < 0.1 ? w.charAt(0).toUpperCase() + w.slice(1) : w
  })

const EXTRAS = [
  ",",
  ".",
  ".",
  ";",
  ":",
  "!",
  "?",
  "'s",
  "(",
  ")",
  "\"",
  " -",
  "\n",
  "\n\n",
  "  ",
  "東京",
  "🙂",
  "2024",
  "3.5"
]

export const benchDocument = (rng: Rng, words: ReadonlyArray<string>): string => {
  const n = 100 + rng.int(900)
  let s = ""
  for (let i = 0; i < n; i++) {
    const u = rng.next()
    // Zipf-like rank: frequent words dominate, the tail keeps producing cache misses.
    const w = words[Math.floor(Math.pow(u, 3) * words.length)] as string
    s += i === 0 ? w : " " + w
    if (rng.next() < 0.12) s += rng.pick(EXTRAS)
  }
  return s
}

/** `bytes` (approximately) of jsonl in DCLM's line format. */
export const benchJsonl = (seed: number, bytes: number): string => {
  const rng = makeRng(seed)
  const words = makeWords(makeRng(12345), 60000)
  const lines: Array<string> = []
  let total = 0
  for (let i = 0; total < bytes; i++) {
    const text = benchDocument(rng, words)
    const line = JSON.stringify({
      bff_contained_ngram_count_before_dedupe: rng.int(10),
      language_id_whole_page_fasttext: { en: 0.9 + rng.next() / 10 },
      metadata: {
        "Content-Length": String(text.length * 2),
        "Content-Type": "application/http; msgtype=response",
        "WARC-Block-Digest": `sha1:${i.toString(36).padStart(32, "X")}`,
        "WARC-Concurrent-To": `<urn:uuid:${i.toString(16).padStart(8, "0")}-aaaa-bbbb-cccc-dddddddddddd>`,
        "WARC-Date": "2019-04-20T12:34:56Z",
        "WARC-IP-Address": "10.0.0.1",
        "WARC-Identified-Payload-Type": "text/html",
        "WARC-Payload-Digest": `sha1:${(i * 7).toString(36).padStart(32, "Y")}`,
        "WARC-Record-ID": `<urn:uuid:${i.toString(16).padStart(8, "0")}-1111-2222-3333-444444444444>`,
        "WARC-Target-URI": `https://example.com/page/${i}`,
        "WARC-Truncated": null,
        "WARC-Type": "response",
        "WARC-Warcinfo-ID": "<urn:uuid:00000000-0000-0000-0000-000000000000>"
      },
      previous_word_count: 300,
      text,
      url: `https://example.com/page/${i}`,
      warcinfo: "isPartOf: CC-MAIN-2019-18\npublisher: Common Crawl",
      fasttext_openhermes_reddit_eli5_vs_rw_v2_bigram_200k_train_prob: rng.next()
    })
    lines.push(line)
    total += line.length + 1
  }
  return lines.join("\n") + "\n"
}
