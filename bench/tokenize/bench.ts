/**
 * Tokenization figures, all measured in one run on the same documents:
 *  1. encode throughput per core, ours (native and TypeScript encoders) vs the `tokenizers`
 *     bindings (single-threaded), and the ratios;
 *  2. end to end for one shard (read/decompress + parse + tokenize + write .bin/.idx), MB of
 *     jsonl per CPU-second; with the zstd program, its CPU (a child process) is added;
 *  3. two shards one after the other on one worker thread vs side by side on two: the speed-up
 *     in wall time, each worker's own CPU rate, and the load average that qualifies both.
 *
 *   npx tsx bench/tokenize/bench.ts [MB per shard, default 40]
 *
 * The corpus is generated under bench/out/tokenize (not committed). Uses the fixture tokenizer.
 * Rates are per CPU-second because the machine is shared: wall time says more about the
 * neighbours than about the code.
 */
import { Effect, Either } from "effect"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { nativeAddonStatus } from "../../src/tokenize/nativeAddon.ts"
import { tokenizeShardsInParallel } from "../../src/tokenize/parallel.ts"
import { TokenBuffer } from "../../src/tokenize/TokenBuffer.ts"
import { type ByteLevelBpe, type Implementation, tokenizerFromJson } from "../../src/tokenize/Tokenizer.ts"
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

const CLOCK_TICKS = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100

/** CPU seconds of this process's exited and reaped children (cutime + cstime of /proc/self/stat). */
const childCpuSeconds = (): number | undefined => {
  try {
    const stat = fs.readFileSync("/proc/self/stat", "latin1")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    // Fields 16 and 17 of stat(5); `fields` starts at field 3.
    return (Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS
  } catch {
    return undefined
  }
}

const measure = async <A>(
  f: () => Promise<A> | A
): Promise<{ value: A; wall: number; cpu: number; childCpu: number | undefined }> => {
  const c0 = cpuSeconds()
  const k0 = childCpuSeconds()
  const w0 = performance.now()
  const value = await f()
  const wall = (performance.now() - w0) / 1000
  const cpu = cpuSeconds() - c0
  const k1 = childCpuSeconds()
  return { value, wall, cpu, childCpu: k0 === undefined || k1 === undefined ? undefined : k1 - k0 }
}

const rate = (bytes: number, seconds: number): string => (bytes / 1e6 / seconds).toFixed(1)
const loadAverage = (): string => os.loadavg().map((l) => l.toFixed(2)).join(" ")

const shardFile = (i: number): string => {
  const file = path.join(OUT, `bench-${MB}mb-${i}.jsonl`)
  if (!fs.existsSync(file)) fs.writeFileSync(file, benchJsonl(1000 + i, MB * 1e6))
  return file
}

const main = async (): Promise<void> => {
  fs.mkdirSync(OUT, { recursive: true })
  const cpus = os.cpus().length
  console.log(`machine: ${cpus} cpus, load average ${loadAverage()}`)
  const addon = nativeAddonStatus()
  console.log(`native encoder: ${addon._tag === "Loaded" ? addon.path : `not available (${addon.reason})`}`)
  const implementations: ReadonlyArray<Exclude<Implementation, "auto">> = addon._tag === "Loaded"
    ? ["native", "js"]
    : ["js"]
  const shards = [shardFile(0), shardFile(1)]
  const zst = `${shards[0]}.zst`
  if (!fs.existsSync(zst)) spawnSync("zstd", ["-q", "-3", "-f", shards[0] as string, "-o", zst])
  const tokenizerBytes = fs.readFileSync(TOKENIZER)
  // A fresh tokenizer each time: its piece cache starts cold, as for a real shard.
  const load = (implementation: Exclude<Implementation, "auto">): ByteLevelBpe =>
    Either.getOrThrow(tokenizerFromJson(tokenizerBytes, TOKENIZER, { implementation }))

  // 1. Encode throughput on the same documents.
  const docs = fs.readFileSync(shards[0] as string, "utf8").trimEnd().split("\n").map((l) =>
    JSON.parse(l).text as string
  )
  const oracleDocs = docs.slice(0, Math.ceil(docs.length / 8))
  const bytesOf = (ds: ReadonlyArray<string>): number => ds.reduce((a, d) => a + Buffer.byteLength(d), 0)
  const textBytes = bytesOf(docs)
  const { Tokenizer } = await import("tokenizers")
  const oracle = Tokenizer.fromFile(TOKENIZER)
  const theirs = await measure(async () => {
    const ids: Array<Array<number>> = []
    for (const d of oracleDocs) ids.push((await oracle.encode(d)).getIds())
    return ids
  })
  const theirRate = bytesOf(oracleDocs) / 1e6 / theirs.cpu
  console.log(`\n1. encode, MB of text per CPU-second (wall in parentheses), ${(textBytes / 1e6).toFixed(1)} MB`)
  const encodeRates = new Map<string, number>()
  for (const implementation of implementations) {
    const ours = load(implementation)
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
    const cold = await measure(encodeAll)
    // Again with the piece cache warm: the difference is the cost of BPE on first-seen pieces.
    const warm = await measure(encodeAll)
    oracleDocs.forEach((d, i) => {
      if (JSON.stringify(Array.from(ours.encode(d))) !== JSON.stringify(theirs.value[i])) {
        throw new Error(`${implementation}: ids differ from the oracle on doc ${i}`)
      }
    })
    encodeRates.set(implementation, textBytes / 1e6 / cold.cpu)
    const label = implementation === "native" ? "ours, native:" : "ours, TypeScript:"
    console.log(
      `   ${label.padEnd(18)} ${rate(textBytes, cold.cpu)} (${rate(textBytes, cold.wall)}), warm cache ${
        rate(textBytes, warm.cpu)
      }, ${cold.value} tokens`
    )
  }
  console.log(
    `   ${"tokenizers:".padEnd(18)} ${theirRate.toFixed(1)} (${
      rate(bytesOf(oracleDocs), theirs.wall)
    }) on the first ${oracleDocs.length} docs`
  )
  for (const [implementation, r] of encodeRates) {
    console.log(`   ratio ${implementation.padEnd(6)} / tokenizers: ${(r / theirRate).toFixed(1)}x   (target >= 10x)`)
  }

  // 2. End to end, one shard, one thread. A small shard first, so that the figures do not include
  // compiling the JavaScript of the reader (a stage run tokenizes many shards per process).
  const warmUp = path.join(OUT, "warm-up.jsonl")
  fs.writeFileSync(warmUp, benchJsonl(7, 2e6))
  console.log(`\n2. end to end per shard, MB of jsonl per CPU-second (wall in parentheses); target >= 50`)
  const cases = [
    ...implementations.map((implementation) => ({ implementation, input: shards[0] as string, zstd: "auto" as const })),
    { implementation: implementations[0]!, input: zst, zstd: "cli" as const },
    { implementation: implementations[0]!, input: zst, zstd: "js" as const }
  ]
  for (const { implementation, input, zstd } of cases) {
    const tokenizer = load(implementation)
    const shard = (file: string) =>
      Effect.runPromise(tokenizeShard({ input: file, tokenizer, outputPrefix: path.join(OUT, "e2e"), zstd }))
    await shard(warmUp)
    const run = await measure(() => shard(input))
    const bytes = run.value.bytesIn
    const label = `${implementation === "native" ? "native" : "TypeScript"}, ${
      input === zst ? `.jsonl.zst (${zstd === "cli" ? "zstd program" : "fzstd, JS"})` : ".jsonl"
    }`
    if (zstd === "cli") {
      // The zstd program decompresses in a child process: its CPU counts too.
      const child = run.childCpu ?? NaN
      console.log(
        `   ${label.padEnd(38)} ${rate(bytes, run.cpu + child)} (${rate(bytes, run.wall)})   = ${
          run.cpu.toFixed(2)
        } CPU-s here + ${child.toFixed(2)} CPU-s in zstd`
      )
    } else {
      console.log(`   ${label.padEnd(38)} ${rate(bytes, run.cpu)} (${rate(bytes, run.wall)})`)
    }
  }

  // 3. Two shards: one worker vs two workers.
  const jobs = shards.map((input, i) => ({ input, outputPrefix: path.join(OUT, `par-${i}`) }))
  const totalBytes = shards.reduce((a, s) => a + fs.statSync(s).size, 0)
  const loadBefore = os.loadavg()[0] as number
  // The worker entry the CLI runs (the bundle built by `npm install`), not the TypeScript source a
  // tsx-run script would otherwise start, whose loader costs a second per thread.
  const bundledWorker = path.join(import.meta.dirname, "..", "..", "dist", "shard-worker.mjs")
  const workerModule = fs.existsSync(bundledWorker) ? pathToFileURL(bundledWorker) : undefined
  const inWorkers = (concurrency: number) =>
    measure(() =>
      Effect.runPromise(
        tokenizeShardsInParallel({
          tokenizerPath: TOKENIZER,
          jobs,
          concurrency,
          ...(workerModule === undefined ? {} : { workerModule })
        })
      )
    )
  const serial = await inWorkers(1)
  const parallel = await inWorkers(2)
  const loadAfter = os.loadavg()[0] as number
  const workerRates = (results: typeof serial.value): string =>
    results.map((r) => r.cpuSeconds === undefined ? "n/a" : rate(r.stats.bytesIn, r.cpuSeconds)).join(", ")
  const meanRate = (results: typeof serial.value): number =>
    results.reduce((a, r) => a + r.stats.bytesIn, 0) / 1e6 /
    results.reduce((a, r) => a + (r.cpuSeconds ?? NaN), 0)
  // Time on shards: one worker runs both in turn; two workers run one each, side by side.
  const serialShards = serial.value.reduce((a, r) => a + r.seconds, 0)
  const parallelShards = Math.max(...parallel.value.map((r) => r.seconds))
  console.log(
    `\n3. two shards of ${MB} MB on worker threads (${serial.value[0]?.implementation} encoder, ${
      workerModule === undefined
        ? "TypeScript worker through tsx: run npm run build:cli for the bundled one"
        : "dist/shard-worker.mjs"
    })`
  )
  for (
    const [label, run, shardsWall] of [["1 worker: ", serial, serialShards], [
      "2 workers:",
      parallel,
      parallelShards
    ]] as const
  ) {
    console.log(
      `   ${label} ${run.wall.toFixed(2)} s wall, of which ${shardsWall.toFixed(2)} s on shards (${
        rate(totalBytes, shardsWall)
      } MB/s), the rest starting workers; per-worker MB per CPU-s: ${workerRates(run.value)}`
    )
  }
  console.log(
    `   speed-up in wall time:           ${(serialShards / parallelShards).toFixed(2)}x on shards, ${
      (serial.wall / parallel.wall).toFixed(2)
    }x with worker start-up, on ${cpus} cpus`
  )
  console.log(
    `   per-worker CPU rate, 2 vs 1:     ${
      (meanRate(parallel.value) / meanRate(serial.value)).toFixed(2)
    }x (1.00: workers side by side do not slow each other down)`
  )
  console.log(`   load average (1 min):            ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after`)
  const busy = Math.max(loadBefore, loadAfter)
  console.log(
    busy > cpus - 1
      ? `   the machine was busy (load ${busy.toFixed(1)} on ${cpus} cpus): the wall-time speed-up measures the ` +
        `share of CPU the neighbours left, not scaling; the per-worker CPU rate is the figure that holds`
      : `   the machine was quiet enough for the wall-time speed-up to show scaling`
  )
  console.log(`\nload average after: ${loadAverage()}`)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
