/**
 * Tokenization figures, all measured in one run on the same documents:
 *  1. encode throughput per core, ours vs the `tokenizers` bindings (single-threaded), and the ratio;
 *  2. end to end for one shard (read/decompress + parse + tokenize + write .bin/.idx), MB of jsonl/s;
 *  3. two shards one after the other on one worker vs in parallel on two workers: the speed-up.
 *
 *   npx tsx bench/tokenize/bench.ts [MB per shard, default 40]
 *
 * The corpus is generated under bench/out/tokenize (not committed). Uses the fixture tokenizer.
 */
import { Effect, Either } from "effect"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { tokenizeShardsInParallel } from "../../src/tokenize/parallel.ts"
import { TokenBuffer } from "../../src/tokenize/TokenBuffer.ts"
import { tokenizerFromJson } from "../../src/tokenize/Tokenizer.ts"
import { tokenizeShard } from "../../src/tokenize/tokenizeShard.ts"
import { benchJsonl } from "./benchCorpus.ts"

// One thread for the bindings, so both sides are measured per core.
process.env.TOKENIZERS_PARALLELISM = "false"
process.env.RAYON_NUM_THREADS = "1"

const ROOT = path.join(import.meta.dirname, "..", "..")
const TOKENIZER = path.join(ROOT, "fixtures", "tokenizer", "tokenizer.json")
const OUT = path.join(ROOT, "bench", "out", "tokenize")
const MB = Number(process.argv[2] ?? 40)

const cpuSeconds = (): number => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}

const measure = async <A>(f: () => Promise<A> | A): Promise<{ value: A; wall: number; cpu: number }> => {
  const c0 = cpuSeconds()
  const w0 = performance.now()
  const value = await f()
  return { value, wall: (performance.now() - w0) / 1000, cpu: cpuSeconds() - c0 }
}

const rate = (bytes: number, seconds: number): string => (bytes / 1e6 / seconds).toFixed(1)

const shardFile = (i: number): string => {
  const file = path.join(OUT, `bench-${MB}mb-${i}.jsonl`)
  if (!fs.existsSync(file)) fs.writeFileSync(file, benchJsonl(1000 + i, MB * 1e6))
  return file
}

const main = async (): Promise<void> => {
  fs.mkdirSync(OUT, { recursive: true })
  console.log(`machine: ${os.cpus().length} cpus, load average ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`)
  const shards = [shardFile(0), shardFile(1)]
  const zst = `${shards[0]}.zst`
  if (!fs.existsSync(zst)) spawnSync("zstd", ["-q", "-3", "-f", shards[0] as string, "-o", zst])
  const tokenizerBytes = fs.readFileSync(TOKENIZER)

  // 1. Encode throughput on the same documents.
  const docs = fs.readFileSync(shards[0] as string, "utf8").trimEnd().split("\n").map((l) =>
    JSON.parse(l).text as string
  )
  const oracleDocs = docs.slice(0, Math.ceil(docs.length / 8))
  const bytesOf = (ds: ReadonlyArray<string>): number => ds.reduce((a, d) => a + Buffer.byteLength(d), 0)
  const { Tokenizer } = await import("tokenizers")
  const oracle = Tokenizer.fromFile(TOKENIZER)
  const theirs = await measure(async () => {
    const ids: Array<Array<number>> = []
    for (const d of oracleDocs) ids.push((await oracle.encode(d)).getIds())
    return ids
  })
  // A fresh tokenizer: its piece cache starts cold, as for a real shard.
  const ours = Either.getOrThrow(tokenizerFromJson(tokenizerBytes, TOKENIZER))
  const buffer = new TokenBuffer(1 << 16)
  const encodeAll = () => {
    let tokens = 0
    for (const d of docs) {
      buffer.clear()
      ours.encodeInto(d, buffer)
      tokens += buffer.length
    }
    return tokens
  }
  const oursRun = await measure(encodeAll)
  // Again with the piece cache warm: the difference is the cost of BPE on first-seen pieces.
  const warmRun = await measure(encodeAll)
  oracleDocs.forEach((d, i) => {
    if (JSON.stringify(Array.from(ours.encode(d))) !== JSON.stringify(theirs.value[i])) {
      throw new Error(`ids differ on doc ${i}`)
    }
  })
  const oursRate = bytesOf(docs) / 1e6 / oursRun.cpu
  const theirRate = bytesOf(oracleDocs) / 1e6 / theirs.cpu
  console.log(`\n1. encode, MB of text per CPU-second (wall in parentheses), ${(bytesOf(docs) / 1e6).toFixed(1)} MB`)
  console.log(`   ours:       ${oursRate.toFixed(1)} (${rate(bytesOf(docs), oursRun.wall)}), ${oursRun.value} tokens`)
  console.log(`   ours, warm: ${rate(bytesOf(docs), warmRun.cpu)} (${rate(bytesOf(docs), warmRun.wall)})`)
  console.log(
    `   tokenizers: ${theirRate.toFixed(1)} (${
      rate(bytesOf(oracleDocs), theirs.wall)
    }) on the first ${oracleDocs.length} docs`
  )
  console.log(`   ratio:      ${(oursRate / theirRate).toFixed(1)}x   (target >= 10x)`)

  // 2. End to end, one shard, one thread.
  console.log(`\n2. end to end per shard, MB of jsonl per CPU-second (wall)`)
  for (const [input, zstd] of [[shards[0], "auto"], [zst, "cli"], [zst, "js"]] as const) {
    const tokenizer = Either.getOrThrow(tokenizerFromJson(tokenizerBytes, TOKENIZER))
    const run = await measure(() =>
      Effect.runPromise(tokenizeShard({ input: input as string, tokenizer, outputPrefix: path.join(OUT, "e2e"), zstd }))
    )
    const label = input === zst ? `.jsonl.zst (${zstd} zstd)` : ".jsonl"
    console.log(
      `   ${label.padEnd(22)} ${rate(run.value.bytesIn, run.cpu)} (${rate(run.value.bytesIn, run.wall)})   target >= 50`
    )
  }

  // 3. Two shards: one worker vs two workers.
  const jobs = shards.map((input, i) => ({ input, outputPrefix: path.join(OUT, `par-${i}`) }))
  const totalBytes = shards.reduce((a, s) => a + fs.statSync(s).size, 0)
  const serial = await measure(() =>
    Effect.runPromise(tokenizeShardsInParallel({ tokenizerPath: TOKENIZER, jobs, concurrency: 1 }))
  )
  const parallel = await measure(() =>
    Effect.runPromise(tokenizeShardsInParallel({ tokenizerPath: TOKENIZER, jobs, concurrency: 2 }))
  )
  console.log(`\n3. two shards of ${MB} MB, wall clock`)
  console.log(`   1 worker:  ${serial.wall.toFixed(2)} s  (${rate(totalBytes, serial.wall)} MB/s)`)
  console.log(`   2 workers: ${parallel.wall.toFixed(2)} s  (${rate(totalBytes, parallel.wall)} MB/s)`)
  console.log(`   speed-up:  ${(serial.wall / parallel.wall).toFixed(2)}x on ${os.cpus().length} cpus`)
  console.log(`\nload average after: ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
