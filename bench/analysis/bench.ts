/**
 * Routing analyses: the TypeScript typed-array loops (src/analysis) against a plain Python rendering of
 * the same definitions (loops over tokens, routing_python.py) and a vectorised numpy one
 * (routing_numpy.py), on the same synthetic traces, one core each (BLAS threads pinned to 1). Prints
 * process CPU time per routed token (token x layer x trace read) and the ratios, in one run.
 *
 *   npx tsx bench/analysis/bench.ts [--tokens 4194304] [--layers 2] [--python-tokens 32768,262144] [--repeat 3] [--no-peers]
 *
 * Plain Python is too slow for the whole trace, so it runs on the first tokens at two sizes. Its time is
 * a fixed part (specialization's expert x vocabulary table: built, then a score per cell) plus a part per
 * token; dividing the whole by a few thousand tokens charges the fixed part to them. The two sizes give
 * both parts (t = fixed + perToken * routed, through the two points), and the ratio is taken at the
 * TypeScript run's size: (fixed + perToken * routed) / routed, the per-token cost plain Python would have
 * on the same trace. The TypeScript and numpy figures come from the whole trace, fixed costs included.
 *
 * Traces are written to bench/out/analysis/ (kept between runs for the same sizes). --no-peers times the
 * TypeScript side alone, for traces too large for the numpy rendering's whole-array temporaries (its
 * co-activation one-hot matrix is tokens x 64 doubles); the peak RSS printed shows the chunked readers'
 * memory does not grow with the trace.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { expertCoactivation } from "../../src/analysis/coactivation.ts"
import { loadBalance } from "../../src/analysis/loadBalance.ts"
import { routerSaturation } from "../../src/analysis/saturation.ts"
import { expertSpecialization } from "../../src/analysis/specialization.ts"
import { writeSyntheticTraces } from "./synthetic.ts"

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : fallback
}
const tokens = arg("tokens", 1 << 22)
const layers = arg("layers", 2)
const pythonSizes = (() => {
  const i = process.argv.indexOf("--python-tokens")
  const given = i >= 0 ? process.argv[i + 1]!.split(",").map(Number) : [1 << 15, 1 << 18]
  return [...new Set(given.map((n) => Math.min(tokens, n)))].sort((a, b) => a - b)
})()
const peers = !process.argv.includes("--no-peers")
const repeat = arg("repeat", 3)
const vocabSize = 50304
const here = import.meta.dirname
const out = path.join(here, "..", "out", "analysis")
fs.mkdirSync(out, { recursive: true })
const options = { numTokens: tokens, vocabSize, numExperts: 64, topK: 6, numLayers: layers, seqLength: 2048, seed: 1 }
const tag = `${tokens}x${layers}`
const final = path.join(out, `final-${tag}.bin`)
const early = path.join(out, `early-${tag}.bin`)
if (!fs.existsSync(final) || !fs.existsSync(early)) {
  console.log(`writing synthetic traces: ${tokens} tokens x ${layers} layers, top-6 of 64 experts ...`)
  writeSyntheticTraces(options, { final, earlier: [{ file: early, change: 0.4 }] })
}

/** Best process CPU seconds over `repeat` runs (the first also warms the JIT). */
const cpu = (f: () => void): number => {
  let best = Infinity
  for (let i = 0; i < repeat; i++) {
    const t0 = process.cpuUsage()
    f()
    const d = process.cpuUsage(t0)
    best = Math.min(best, (d.user + d.system) / 1e6)
  }
  return best
}

const checkpoints = [{ step: 1, file: early }, { step: 2, file: final }]
// Routed tokens each analysis processes: saturation and load balance read both traces, the others the final.
const work = {
  saturation: 2 * tokens * layers,
  load: 2 * tokens * layers,
  coactivation: tokens * layers,
  specialization: tokens * layers
}
const ts = {
  saturation: cpu(() => routerSaturation({ scale: "bench", checkpoints, ks: [6, 4, 2, 1] })),
  load: cpu(() => loadBalance({ scale: "bench", checkpoints })),
  coactivation: cpu(() => expertCoactivation({ scale: "bench", step: 2, file: final })),
  specialization: cpu(() =>
    expertSpecialization({
      scale: "bench",
      step: 2,
      file: final,
      vocabSize,
      minOccurrences: 10,
      topTokens: 10,
      countsFile: path.join(out, "specialization.counts")
    })
  )
}

const rssAfterTs = process.resourceUsage().maxRSS / 1024
if (!peers) {
  console.log(
    `\nrouting analyses, ${tokens} tokens x ${layers} layers; CPU time per routed token, one core (TS only)\n`
  )
  for (const name of Object.keys(work) as Array<keyof typeof work>) {
    console.log(
      `${name.padEnd(16)}${((ts[name] * 1e9) / work[name]).toFixed(1).padStart(8)} ns  ${ts[name].toFixed(2)} s`
    )
  }
  console.log(
    `peak RSS ${rssAfterTs.toFixed(0)} MiB (traces: ${(2 * fs.statSync(final).size / 2 ** 30).toFixed(1)} GiB)`
  )
  process.exit(0)
}

const singleThread = { ...process.env, OPENBLAS_NUM_THREADS: "1", OMP_NUM_THREADS: "1", MKL_NUM_THREADS: "1" }
const numpy = JSON.parse(
  execFileSync("python3", [
    path.join(here, "routing_numpy.py"),
    "--final",
    final,
    "--checkpoint",
    early,
    "--vocab",
    String(vocabSize),
    "--times",
    "--summary-only"
  ], { encoding: "utf8", env: singleThread, maxBuffer: 1 << 26 })
) as { times: Record<keyof typeof work, number> }
const plainRun = (count: number) =>
  JSON.parse(
    execFileSync("python3", [
      path.join(here, "routing_python.py"),
      "--final",
      final,
      "--checkpoint",
      early,
      "--tokens",
      String(count),
      "--vocab",
      String(vocabSize),
      "--repeat",
      String(repeat)
    ], { encoding: "utf8", env: singleThread, cwd: here, maxBuffer: 1 << 26 })
  ) as { tokens: number; times: Record<keyof typeof work, number> }
const plain = pythonSizes.map(plainRun)

const ns = (seconds: number, routed: number) => (seconds * 1e9) / routed
/** Routed tokens of an analysis over the first `count` tokens. */
const routedAt = (name: keyof typeof work, count: number) => (work[name] / tokens) * count
const rows = (Object.keys(work) as Array<keyof typeof work>).map((name) => {
  const t = ns(ts[name], work[name])
  const v = ns(numpy.times[name], work[name])
  const sizes = plain.map((run) => ns(run.times[name], routedAt(name, run.tokens)))
  const first = plain[0]!
  const last = plain[plain.length - 1]!
  // Through the two sizes: seconds per routed token and the fixed seconds; one size: all of it per token.
  const slope = plain.length > 1
    ? (last.times[name] - first.times[name]) / (routedAt(name, last.tokens) - routedAt(name, first.tokens))
    : first.times[name] / routedAt(name, first.tokens)
  const fixed = first.times[name] - slope * routedAt(name, first.tokens)
  const p = ns(fixed + slope * work[name], work[name])
  return { name, t, v, p, sizes, fixed }
})
const pad = (s: string, n: number) => s.padStart(n)
const sizeNames = plain.map((run) => `Py@${run.tokens >= 1024 ? `${run.tokens / 1024}k` : run.tokens}`)
console.log(
  `\nrouting analyses, ${tokens} tokens x ${layers} layers (top-6 of 64 experts, vocab ${vocabSize}); ` +
    `CPU time per routed token, one core\nplain Python on the first ${plain.map((r) => r.tokens).join(" and ")} ` +
    `tokens: per token at each size, its fixed cost through the sizes, and per token at this trace's size ` +
    `((fixed + per token x routed) / routed), which the ratio uses\n`
)
console.log(
  `${"analysis".padEnd(16)}${pad("TS ns", 9)}${sizeNames.map((n) => pad(`${n} ns`, 13)).join("")}${
    pad("Py fixed ms", 13)
  }${pad(`Py@${tokens} ns`, 16)}${pad("ratio", 8)}${pad("numpy ns", 10)}${pad("ratio", 8)}`
)
for (const r of rows) {
  console.log(
    `${r.name.padEnd(16)}${pad(r.t.toFixed(1), 9)}${r.sizes.map((x) => pad(x.toFixed(0), 13)).join("")}${
      pad((r.fixed * 1e3).toFixed(0), 13)
    }${pad(r.p.toFixed(0), 16)}${pad(`${(r.p / r.t).toFixed(0)}x`, 8)}${pad(r.v.toFixed(1), 10)}${
      pad(`${(r.v / r.t).toFixed(1)}x`, 8)
    }`
  )
}
const total = (k: "t" | "v" | "p") => rows.reduce((s, r) => s + r[k], 0)
const totalAt = (i: number) => rows.reduce((s, r) => s + r.sizes[i]!, 0)
console.log(
  `${"all four".padEnd(16)}${pad(total("t").toFixed(1), 9)}${
    plain.map((_, i) => pad(totalAt(i).toFixed(0), 13)).join("")
  }${pad((rows.reduce((s, r) => s + r.fixed, 0) * 1e3).toFixed(0), 13)}${pad(total("p").toFixed(0), 16)}${
    pad(`${(total("p") / total("t")).toFixed(0)}x`, 8)
  }${pad(total("v").toFixed(1), 10)}${pad(`${(total("v") / total("t")).toFixed(1)}x`, 8)}`
)
console.log(
  `TS peak RSS ${rssAfterTs.toFixed(0)} MiB (traces: ${(2 * fs.statSync(final).size / 2 ** 20).toFixed(0)} MiB); ` +
    `load average ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}`
)
