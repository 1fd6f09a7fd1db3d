/**
 * Writes `fixtures/tokenizer/tokenizer.json`: a small GPT-NeoX-style byte-level BPE tokenizer
 * trained on the bundled corpus. Same layout as GPT-NeoX-20B's file: `<|endoftext|>` id 0 and
 * `<|padding|>` id 1 (special, not normalized), the 256 byte symbols, the trained merges, then
 * non-special whitespace-run tokens (24 spaces down to 2) at the top of the vocabulary, NFC
 * normalizer, ByteLevel pre-tokenizer / post-processor / decoder without prefix space.
 *
 *   npx tsx scripts/make-tokenizer.ts [out.json]
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { byteLevelPreTokenizer } from "tokenizers"
import { BYTE_TO_CHAR } from "../src/tokenize/byteLevel.ts"
import { trainBpe } from "./corpus/bpeTrainer.ts"
import { corpusShardJsonl, SHARD_FILES } from "./make-corpus.ts"

/** Upper bound on the model vocabulary (specials + bytes + merges); the corpus may run out of pairs first. */
const MAX_MODEL_VOCAB = 4096 - 23
const SPACE_RUNS = Array.from({ length: 23 }, (_, i) => " ".repeat(24 - i))

const addedToken = (id: number, content: string, special: boolean) => ({
  id,
  content,
  single_word: false,
  lstrip: false,
  rstrip: false,
  // NeoX marks its specials as not normalized and its whitespace runs as normalized.
  normalized: !special,
  special
})

/** The fixture's tokenizer.json text; deterministic. */
export const makeTokenizerJson = (): string => {
  const preTokenizer = byteLevelPreTokenizer(false, true)
  const words = new Map<string, number>()
  for (let i = 0; i < SHARD_FILES.length; i++) {
    for (const line of corpusShardJsonl(i).split("\n")) {
      if (line === "") continue
      const text = (JSON.parse(line) as { text: string }).text.normalize("NFC")
      for (const [piece] of preTokenizer.preTokenizeString(text)) words.set(piece, (words.get(piece) ?? 0) + 1)
    }
  }
  const specials = ["<|endoftext|>", "<|padding|>"]
  const bpe = trainBpe(words, BYTE_TO_CHAR, MAX_MODEL_VOCAB - specials.length - 256)
  // Added tokens continue right after the model vocabulary, as in GPT-NeoX (HF renumbers gaps).
  const modelSize = specials.length + bpe.symbols.length
  const vocab: Record<string, number> = {}
  ;[...specials, ...bpe.symbols].forEach((s, id) => vocab[s] = id)
  const tokenizer = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [
      addedToken(0, specials[0] as string, true),
      addedToken(1, specials[1] as string, true),
      ...SPACE_RUNS.map((s, i) => addedToken(modelSize + i, s, false))
    ],
    normalizer: { type: "NFC" },
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true },
    post_processor: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true },
    decoder: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      vocab,
      merges: bpe.merges.map(([a, b]) => `${a} ${b}`)
    }
  }
  return JSON.stringify(tokenizer, null, 1) + "\n"
}

const main = (): void => {
  const out = process.argv[2] ?? path.join(import.meta.dirname, "..", "fixtures", "tokenizer", "tokenizer.json")
  fs.mkdirSync(path.dirname(out), { recursive: true })
  const json = makeTokenizerJson()
  fs.writeFileSync(out, json)
  console.log(`${out}: ${json.length} bytes`)
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === import.meta.filename) main()
