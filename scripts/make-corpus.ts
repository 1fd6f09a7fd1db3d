/**
 * Writes the bundled tiny corpus `fixtures/corpus/`: four DCLM-format shards in the three
 * suffixes DCLM data comes in (.jsonl.zstd, .jsonl.zst, plain .jsonl). Deterministic: the
 * jsonl text depends only on the seed; the compressed bytes also on the zstd version.
 *
 *   npx tsx scripts/make-corpus.ts [outDir]
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { generateDocuments, toJsonl } from "./corpus/generate.ts"

export const CORPUS_SEED = 20240901
export const DOCS_PER_SHARD = 800
export const SHARD_FILES = [
  "dclm-tiny-0000.jsonl.zstd",
  "dclm-tiny-0001.jsonl.zst",
  "dclm-tiny-0002.jsonl.zst",
  "dclm-tiny-0003.jsonl"
] as const

/** The uncompressed jsonl of shard `i` of the bundled corpus. */
export const corpusShardJsonl = (i: number): string => toJsonl(generateDocuments(CORPUS_SEED, i, DOCS_PER_SHARD))

const compress = (data: string): Buffer => {
  // Level 19 keeps the committed fixtures small; --no-progress keeps the output quiet.
  const r = spawnSync("zstd", ["-19", "-q", "-c", "--no-progress"], { input: data, maxBuffer: 1 << 30 })
  if (r.status !== 0) throw new Error(`zstd failed: ${r.stderr.toString()}`)
  return r.stdout
}

const main = (): void => {
  const outDir = process.argv[2] ?? path.join(import.meta.dirname, "..", "fixtures", "corpus")
  fs.mkdirSync(outDir, { recursive: true })
  SHARD_FILES.forEach((name, i) => {
    const jsonl = corpusShardJsonl(i)
    const bytes = name.endsWith(".jsonl") ? Buffer.from(jsonl, "utf8") : compress(jsonl)
    fs.writeFileSync(path.join(outDir, name), bytes)
    console.log(`${name}: ${Buffer.byteLength(jsonl)} bytes of jsonl, ${bytes.length} on disk`)
  })
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === import.meta.filename) main()
