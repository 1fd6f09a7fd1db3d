/**
 * Deterministic generator of DCLM-like documents: one JSON object per line with `text`, `url`
 * and `metadata`. The text is English-like prose from a small topic grammar, so a language model
 * trained on it sees its loss fall clearly, with a sprinkling of the things real web text has
 * (numbers, contractions, accents, decomposed accents that NFC composes, CJK, emoji, code with
 * indentation and tabs, whitespace runs, lists).
 */
import { makeRng, type Rng } from "./prng.ts"

const TOPICS = {
  garden: {
    nouns: ["garden", "tomato", "seed", "soil", "rose", "bean", "leaf", "root", "water", "sun", "bed", "pot", "weed"],
    verbs: ["grows", "needs", "covers", "feeds", "shades", "dries", "blooms", "keeps"],
    adjs: ["green", "wet", "sunny", "young", "tall", "rich", "dry", "fresh"]
  },
  kitchen: {
    nouns: ["bread", "oven", "flour", "butter", "soup", "knife", "onion", "salt", "pan", "recipe", "dough", "sugar"],
    verbs: ["bakes", "melts", "cuts", "boils", "mixes", "tastes", "warms", "fills"],
    adjs: ["hot", "sweet", "salty", "soft", "crisp", "golden", "thick", "warm"]
  },
  city: {
    nouns: ["street", "train", "bridge", "market", "tower", "station", "bus", "river", "park", "square", "crowd"],
    verbs: ["crosses", "connects", "opens", "closes", "serves", "follows", "reaches", "passes"],
    adjs: ["busy", "old", "quiet", "crowded", "narrow", "modern", "bright", "long"]
  },
  science: {
    nouns: ["cell", "atom", "energy", "experiment", "model", "sample", "signal", "theory", "field", "result", "data"],
    verbs: ["predicts", "measures", "explains", "produces", "absorbs", "changes", "tests", "shows"],
    adjs: ["small", "stable", "random", "linear", "strong", "weak", "precise", "new"]
  },
  sports: {
    nouns: ["team", "ball", "coach", "player", "goal", "match", "season", "field", "score", "league", "fan"],
    verbs: ["wins", "loses", "kicks", "trains", "scores", "leads", "beats", "plays"],
    adjs: ["fast", "strong", "young", "tired", "happy", "final", "early", "late"]
  }
} as const

type Topic = keyof typeof TOPICS
const TOPIC_NAMES = Object.keys(TOPICS) as Array<Topic>

const DETS = ["the", "a", "every", "this", "that", "one", "our", "their"]
const ADVS = ["often", "always", "slowly", "quickly", "rarely", "never", "usually", "still"]
const CONNECT = ["and", "but", "because", "while", "so", "although", "when", "after"]
const NAMES = ["Anna", "Ben", "Carla", "David", "Élodie", "José", "Zoë", "Søren", "Mia", "Noah", "Renée", "Łukasz"]
const PLACES = ["Paris", "Zürich", "São Paulo", "Kraków", "Reykjavík", "Tokyo", "Ōsaka", "Montréal", "Berlin"]
const CONTRACTIONS = ["don't", "it's", "we're", "they've", "I'm", "you'll", "she'd", "can't", "won't", "isn't"]
const CJK = ["東京は大きな都市です。", "我喜欢喝茶。", "서울은 아름답다.", "今日は晴れです。", "数据和模型。"]
const EMOJI = ["🙂", "🌱", "🍞", "🚆", "⚽", "👍🏽", "👩‍🔬", "🇫🇷", "❤️", "✨"]
// Decomposed forms (base letter + combining mark): NFC must compose them.
const DECOMPOSED = [
  "cafe\u0301",
  "nai\u0308ve",
  "Zu\u0308rich",
  "e\u0301te\u0301",
  "man\u0303ana",
  "A\u030Angstro\u0308m"
]

const zipfPick = <A>(rng: Rng, items: ReadonlyArray<A>): A => {
  // Squaring a uniform draw favours the first items: a cheap Zipf-like skew.
  const u = rng.next()
  return items[Math.floor(u * u * items.length)] as A
}

const capitalize = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1)

const sentence = (rng: Rng, topic: Topic): string => {
  const t = TOPICS[topic]
  const np = (): string => {
    const adj = rng.next() < 0.5 ? zipfPick(rng, t.adjs) + " " : ""
    return `${zipfPick(rng, DETS)} ${adj}${zipfPick(rng, t.nouns)}`
  }
  const clause = (): string => {
    const adv = rng.next() < 0.3 ? zipfPick(rng, ADVS) + " " : ""
    return `${np()} ${adv}${zipfPick(rng, t.verbs)} ${np()}`
  }
  let s = clause()
  const r = rng.next()
  if (r < 0.3) s += ` ${zipfPick(rng, CONNECT)} ${clause()}`
  else if (r < 0.4) s = `${rng.pick(NAMES)} says ${rng.pick(CONTRACTIONS)} true that ${s}`
  else if (r < 0.5) s += ` in ${rng.pick(PLACES)} since ${1900 + rng.int(125)}`
  else if (r < 0.55) s += `, about ${rng.int(1000)}.${rng.int(100)} percent of the time`
  else if (r < 0.6) s += ` (${rng.pick(CONTRACTIONS)} ${zipfPick(rng, t.adjs)})`
  const end = rng.next() < 0.85 ? "." : rng.next() < 0.5 ? "!" : "?"
  return capitalize(s) + end
}

const paragraph = (rng: Rng, topic: Topic): string => {
  const n = 2 + rng.int(6)
  const parts: Array<string> = []
  for (let i = 0; i < n; i++) parts.push(sentence(rng, topic))
  return parts.join(" ")
}

const oddments = (rng: Rng): string => {
  switch (rng.int(7)) {
    case 0:
      return rng.pick(CJK)
    case 1:
      return `${rng.pick(EMOJI)} ${rng.pick(EMOJI)}`
    case 2:
      return `${rng.pick(DECOMPOSED)} ${rng.pick(DECOMPOSED)}`
    case 3:
      return `item:${" ".repeat(2 + rng.int(30))}${rng.int(10000)}`
    case 4:
      return `def f(x):\n    return x * ${rng.int(100)}\n\tif x:\n        pass`
    case 5:
      return `- first\n- second\r\n- third`
    default:
      return `Contact us at info@example.com or call +1 (555) ${100 + rng.int(900)}-${1000 + rng.int(9000)}.`
  }
}

/** The text of document `index` of a corpus; `rng` carries the corpus' stream. */
export const documentText = (rng: Rng): string => {
  const topic = rng.pick(TOPIC_NAMES)
  const n = 1 + rng.int(5)
  const paras: Array<string> = []
  for (let i = 0; i < n; i++) {
    paras.push(paragraph(rng, topic))
    if (rng.next() < 0.12) paras.push(oddments(rng))
  }
  return paras.join(rng.next() < 0.8 ? "\n\n" : "\n")
}

export interface CorpusDocument {
  readonly text: string
  readonly url: string
  readonly metadata: {
    readonly "WARC-Record-ID": string
    readonly "Content-Length": number
    readonly language: string
    readonly fasttext_score: number
  }
}

/** Generates `count` documents of shard `shard`; the same arguments always give the same documents. */
export const generateDocuments = (seed: number, shard: number, count: number): Array<CorpusDocument> => {
  const rng = makeRng(seed * 1000003 + shard)
  const docs: Array<CorpusDocument> = []
  for (let i = 0; i < count; i++) {
    // A few empty documents: Megatron skips them but keeps a document-index entry.
    const text = rng.next() < 0.002 ? "" : documentText(rng)
    const id = (shard * 1_000_000 + i).toString(16).padStart(8, "0")
    docs.push({
      text,
      url: `https://example.org/${rng.pick(TOPIC_NAMES)}/${id}.html`,
      metadata: {
        "WARC-Record-ID": `<urn:uuid:${id}-0000-4000-8000-${id}${id.slice(0, 4)}>`,
        "Content-Length": text.length * 3,
        language: "en",
        fasttext_score: Math.round(rng.next() * 1e6) / 1e6
      }
    })
  }
  return docs
}

/** DCLM line format: one JSON object per line, newline terminated. */
export const toJsonl = (docs: ReadonlyArray<CorpusDocument>): string =>
  docs.map((d) => JSON.stringify(d)).join("\n") + "\n"
