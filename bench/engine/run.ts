/**
 * The engine benchmark, one script printing every figure and ratio of the issue in one run:
 *
 *  1. no-op `run` (everything cached) of generated DAGs of 1k, 10k and 100k stages, in-process and
 *     through the bundled CLI; the cost must grow no worse than linearly (100k <= 100 x 1k);
 *  2. `snakemake -n` over the same DAGs as Snakefiles vs our CLI `plan` (target: >= 10x faster);
 *  3. status of a workspace holding GBs of unchanged outputs reads no file contents (StatCache
 *     `bytesHashed` = 0), and hashing, when it is needed, runs near the disk's read speed.
 *
 *   npx tsx bench/engine/run.ts [--sizes 1000,10000,100000] [--snakemake-sizes 1000,10000]
 *     [--reps 3] [--big-files 4] [--big-mb 1024] [--skip cli,snakemake,statcache] [--warm-only]
 *     [--workdir DIR] [--keep] [--populate-limit-s 480]
 *
 * This is a script, not a timed test: the machines are shared, so it reports CPU time next to wall
 * time and the load average around each section, and judges ratios on CPU time.
 */
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { parseArgs } from "node:util"
import { loaderPath } from "../../scripts/cached-bundle.cjs"
import { servicesLayer } from "../../src/cli/Services.ts"
import { plan } from "../../src/engine/Planner.ts"
import type { RunOptions } from "../../src/engine/Runner.ts"
import { run } from "../../src/engine/Runner.ts"
import type { PipelineDefinition } from "../../src/Pipeline.ts"
import { resolve } from "../../src/Pipeline.ts"
import { ContentHasher, sha256File } from "../../src/store/ContentHasher.ts"
import bigfiles, { BIG_OUTPUT } from "./bigfiles.ts"
import { buildBenchCli } from "./build-bench-cli.mjs"
import generated, { LAYER_WIDTH, layeredDag, PRESET_SIZES, snakefile, snakemakeOutputs } from "./generated.ts"

const { values: args } = parseArgs({
  options: {
    sizes: { type: "string", default: "1000,10000,100000" },
    "snakemake-sizes": { type: "string", default: "1000,10000" },
    reps: { type: "string", default: "3" },
    "big-files": { type: "string", default: "4" },
    "big-mb": { type: "string", default: "1024" },
    skip: { type: "string", default: "" },
    "warm-only": { type: "boolean", default: false },
    workdir: { type: "string", default: path.join(os.tmpdir(), "flame-bench-engine") },
    keep: { type: "boolean", default: false },
    "populate-limit-s": { type: "string", default: "480" }
  }
})

const ints = (text: string) => text.split(",").filter((s) => s !== "").map((s) => Number(s.replace(/k$/i, "000")))
const sizes = ints(args.sizes).sort((a, b) => a - b)
const snakemakeSizes = ints(args["snakemake-sizes"])
const reps = Math.max(1, Number(args.reps))
const skip = new Set(args.skip.split(","))
const workdir = path.resolve(args.workdir)
const populateLimitMs = Number(args["populate-limit-s"]) * 1000
const here = path.dirname(new URL(import.meta.url).pathname)
const outDir = path.join(here, "..", "out", "engine")

// ---------------------------------------------------------------------------------------------
// Measuring

interface Sample {
  readonly wallMs: number
  readonly cpuMs: number
  readonly maxRssMb?: number
}

const cpuNow = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

const timed = async <A>(f: () => Promise<A>): Promise<{ value: A; sample: Sample }> => {
  // Collect the previous measurement's garbage now, not during this one, when --expose-gc allows it.
  ;(globalThis as { gc?: () => void }).gc?.()
  const c0 = cpuNow()
  const t0 = performance.now()
  const value = await f()
  return { value, sample: { wallMs: performance.now() - t0, cpuMs: cpuNow() - c0 } }
}

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0
    ? NaN
    : s.length % 2 === 1
    ? s[(s.length - 1) / 2]!
    : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

const summarize = (samples: ReadonlyArray<Sample>): Sample => {
  const rss = samples.flatMap((s) => (s.maxRssMb === undefined ? [] : [s.maxRssMb]))
  return {
    wallMs: median(samples.map((s) => s.wallMs)),
    cpuMs: median(samples.map((s) => s.cpuMs)),
    ...(rss.length > 0 ? { maxRssMb: Math.max(...rss) } : {})
  }
}

const hasGnuTime = fs.existsSync("/usr/bin/time")

/** Runs a command, with GNU time when present so a child's CPU time and peak memory are known too. */
const timedCommand = (file: string, argv: ReadonlyArray<string>, env: NodeJS.ProcessEnv = process.env) => {
  const timeFile = path.join(workdir, `time.${process.pid}.txt`)
  const t0 = performance.now()
  const result = hasGnuTime
    ? spawnSync("/usr/bin/time", ["-f", "%e %U %S %M", "-o", timeFile, file, ...argv], {
      env,
      encoding: "utf8",
      maxBuffer: 1 << 30
    })
    : spawnSync(file, argv, { env, encoding: "utf8", maxBuffer: 1 << 30 })
  const wallMs = performance.now() - t0
  let sample: Sample = { wallMs, cpuMs: NaN }
  if (hasGnuTime && fs.existsSync(timeFile)) {
    // GNU time may prefix a "Command exited with non-zero status" line; the figures are on the last line.
    const last = fs.readFileSync(timeFile, "utf8").trim().split("\n").pop() ?? ""
    const [, user, sys, rssKb] = last.split(" ").map(Number)
    sample = { wallMs, cpuMs: ((user ?? NaN) + (sys ?? NaN)) * 1000, maxRssMb: (rssKb ?? NaN) / 1024 }
    fs.rmSync(timeFile, { force: true })
  }
  return { status: result.status, stdout: result.stdout ?? "", stderr: result.stderr ?? "", sample }
}

const fmtMs = (ms: number) =>
  Number.isNaN(ms) ?
    "-" :
    ms < 1000 ?
    `${ms.toFixed(0)} ms` :
    ms < 60_000 ?
    `${(ms / 1000).toFixed(2)} s` :
    `${(ms / 60_000).toFixed(1)} min`
const fmtSample = (s: Sample) => `${fmtMs(s.wallMs)} wall, ${fmtMs(s.cpuMs)} CPU`
const fmtRate = (bytes: number, ms: number) => `${(bytes / (1024 * 1024) / (ms / 1000)).toFixed(0)} MiB/s`
const load = () => os.loadavg().map((l) => l.toFixed(2)).join(" ")
const label = (n: number) => (n % 1000 === 0 ? `${n / 1000}k` : String(n))
const log = (line: string) => console.log(line)

const results: Record<string, unknown> = {
  host: {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memGb: os.totalmem() / 2 ** 30,
    node: process.version
  },
  startedAt: new Date().toISOString()
}
const tableRows: Array<[string, string, string]> = []
const row = (what: string, figure: string, verdict = "") => tableRows.push([what, figure, verdict])

// ---------------------------------------------------------------------------------------------
// The engine, in-process (as test/unit/engine/runner.test.ts drives it)

const runOptions = (preset: string, jobs = 2): RunOptions => ({
  preset,
  jobs,
  cpus: jobs,
  gpus: [],
  keepGoing: false,
  wait: false,
  overrides: [],
  argv: []
})

/** The preset naming a size, or the default preset with FLAME_BENCH_STAGES set (also for the CLI's children). */
const presetFor = (n: number): string => {
  const named = Object.entries(PRESET_SIZES).find(([, size]) => size === n)?.[0]
  if (named !== undefined) return named
  process.env.FLAME_BENCH_STAGES = String(n)
  return "default"
}

const runInProcess = (definition: PipelineDefinition, preset: string, workspace: string) =>
  Effect.runPromise(
    Effect.flatMap(resolve(definition, { preset }), (pipeline) => run(pipeline, runOptions(preset))).pipe(
      Effect.provide(servicesLayer(workspace))
    )
  )

/** Resolve + plan with a fresh set of services (a fresh stat cache, as a new `status` process has). */
const planInProcess = (definition: PipelineDefinition, preset: string, workspace: string) =>
  Effect.runPromise(
    Effect.gen(function*() {
      const pipeline = yield* resolve(definition, { preset })
      const entries = yield* plan(pipeline)
      const hasher = yield* ContentHasher
      return { entries, bytesHashed: hasher.cache.bytesHashed }
    }).pipe(Effect.provide(servicesLayer(workspace)))
  )

const isFullyFresh = async (definition: PipelineDefinition, preset: string, workspace: string) => {
  if (!fs.existsSync(path.join(workspace, "lineage.sqlite"))) return false
  try {
    const { entries } = await planInProcess(definition, preset, workspace)
    return entries.every((e) => e.status === "fresh")
  } catch {
    return false
  }
}

// ---------------------------------------------------------------------------------------------
// 1. No-op run at each size

let bundle = ""
const binPath = path.join(here, "..", "..", "bin", "flame-pipe.js")
const cli = (argv: ReadonlyArray<string>, env?: NodeJS.ProcessEnv) =>
  timedCommand(process.execPath, [loaderPath, bundle, ...argv], env)

interface SizeResult {
  readonly n: number
  readonly populate: (Sample & { reused: boolean }) | undefined
  readonly noopRun: Sample
  readonly noopPlan: Sample
  readonly cliRun: Sample | undefined
  /** A no-op plan of an unchanged workspace, answered from the plan memo. */
  readonly cliPlan: Sample | undefined
  /** The first plan after a run, which evaluates the pipeline and records the memo. */
  readonly cliPlanRecording: Sample | undefined
  /** A no-op plan with the memo off (FLAME_PIPE_PLAN_MEMO=0): the pipeline evaluated in full. */
  readonly cliPlanFull: Sample | undefined
}

const measureSize = async (n: number, populatePerStageMs: number | undefined): Promise<SizeResult | undefined> => {
  const preset = presetFor(n)
  const workspace = path.join(workdir, `generated-${label(n)}`)
  log(`\n== ${label(n)} stages (${Math.ceil(n / LAYER_WIDTH)} layers), workspace ${workspace}; load ${load()}`)

  let populate: SizeResult["populate"]
  if (await isFullyFresh(generated, preset, workspace)) {
    log("  populate: reused a fully fresh workspace from an earlier --keep run")
    populate = { wallMs: NaN, cpuMs: NaN, reused: true }
  } else {
    if (populatePerStageMs !== undefined && populatePerStageMs * n > populateLimitMs) {
      log(
        `  SKIPPED: populating would take about ${fmtMs(populatePerStageMs * n)} ` +
          `(${populatePerStageMs.toFixed(2)} ms/stage measured on the smaller size), over --populate-limit-s`
      )
      return undefined
    }
    fs.rmSync(workspace, { recursive: true, force: true })
    const { sample, value: summary } = await timed(() => runInProcess(generated, preset, workspace))
    if (summary.executed !== n) throw new Error(`populate executed ${summary.executed} of ${n} stages`)
    populate = { ...sample, reused: false }
    log(`  populate (run, jobs 2): ${fmtSample(sample)} = ${(sample.wallMs / n).toFixed(2)} ms/stage wall`)
  }

  const noopRuns: Array<Sample> = []
  const noopPlans: Array<Sample> = []
  for (let i = 0; i < reps; i++) {
    const r = await timed(() => runInProcess(generated, preset, workspace))
    if (r.value.cached !== n) throw new Error(`no-op run: ${r.value.executed} executed, ${r.value.cached} cached`)
    noopRuns.push(r.sample)
    const p = await timed(() => planInProcess(generated, preset, workspace))
    if (p.value.entries.some((e) => e.status !== "fresh")) throw new Error("no-op plan found stale stages")
    noopPlans.push(p.sample)
  }
  const noopRun = summarize(noopRuns)
  const noopPlan = summarize(noopPlans)
  log(`  in-process no-op run (resolve + run): ${fmtSample(noopRun)} (median of ${reps})`)
  log(`  in-process no-op plan (resolve + plan): ${fmtSample(noopPlan)}`)

  let cliRun: Sample | undefined
  let cliPlan: Sample | undefined
  let cliPlanRecording: Sample | undefined
  let cliPlanFull: Sample | undefined
  if (!skip.has("cli")) {
    const planArgs = ["plan", "generated", "--preset", preset, "--workspace", workspace]
    const checkedPlan = (what: string, env?: NodeJS.ProcessEnv) => {
      const p = cli(planArgs, env)
      if (p.status !== 0 || !p.stdout.includes(`0 of ${n} stages would run`)) {
        throw new Error(`CLI plan (${what}): status ${p.status}: ${p.stdout.slice(-500)}${p.stderr.slice(-500)}`)
      }
      return p
    }
    const runs: Array<Sample> = []
    const recordings: Array<Sample> = []
    for (let i = 0; i < reps; i++) {
      const r = cli(["run", "generated", "--preset", preset, "--workspace", workspace, "--jobs", "2"])
      if (r.status !== 0 || !r.stdout.includes(`0 executed, ${n} cached`)) {
        throw new Error(`CLI run: status ${r.status}: ${r.stdout.slice(-500)}${r.stderr.slice(-500)}`)
      }
      runs.push(r.sample)
      // A run writes to the lineage database, so the plan after it evaluates the pipeline and records
      // its answer (scripts/plan-memo.cjs).
      recordings.push(checkedPlan("after a run").sample)
    }
    // Plans of an unchanged workspace: answered from the memo, and, alternating with them, evaluated in full.
    const hits: Array<Sample> = []
    const full: Array<Sample> = []
    for (let i = 0; i < reps; i++) {
      const hit = checkedPlan("memo")
      const evaluated = checkedPlan("memo off", { ...process.env, FLAME_PIPE_PLAN_MEMO: "0" })
      if (hit.stdout !== evaluated.stdout) throw new Error("the memo's answer differs from the evaluated plan's")
      hits.push(hit.sample)
      full.push(evaluated.sample)
    }
    cliRun = summarize(runs)
    cliPlan = summarize(hits)
    cliPlanRecording = summarize(recordings)
    cliPlanFull = summarize(full)
    log(`  CLI no-op run (node start to exit): ${fmtSample(cliRun)}, peak RSS ${cliRun.maxRssMb?.toFixed(0)} MB`)
    log(`  CLI no-op plan, answered from the memo: ${fmtSample(cliPlan)}, peak RSS ${cliPlan.maxRssMb?.toFixed(0)} MB`)
    log(`  CLI no-op plan, evaluated (memo off): ${fmtSample(cliPlanFull)}`)
    log(`  CLI no-op plan after a run (evaluated and recorded): ${fmtSample(cliPlanRecording)}`)
  }
  return { n, populate, noopRun, noopPlan, cliRun, cliPlan, cliPlanRecording, cliPlanFull }
}

// ---------------------------------------------------------------------------------------------
// 2. Snakemake over the same DAG

const snakemakeVersion = () => {
  const r = spawnSync("snakemake", ["--version"], { encoding: "utf8" })
  return r.status === 0 ? r.stdout.trim() : undefined
}

/** A Snakemake directory where every output exists, newer than its inputs: `-n` must have nothing to do. */
const snakemakeWorkspace = (n: number) => {
  const dir = path.join(workdir, `snakemake-${label(n)}`)
  fs.rmSync(dir, { recursive: true, force: true })
  fs.mkdirSync(dir, { recursive: true })
  const dag = layeredDag(n)
  fs.writeFileSync(path.join(dir, "Snakefile"), snakefile(dag))
  // Whole seconds per layer, oldest first, so no filesystem timestamp granularity makes an output look older.
  const base = Date.now() / 1000 - Math.ceil(n / LAYER_WIDTH) - 10
  dag.forEach((stage, i) => {
    const file = path.join(dir, snakemakeOutputs(dag)[i]!)
    fs.mkdirSync(path.dirname(file), { recursive: true })
    fs.writeFileSync(file, `${stage.id}\n`)
    const t = base + Math.floor(i / LAYER_WIDTH)
    fs.utimesSync(file, t, t)
  })
  return dir
}

const measureSnakemake = (n: number, ours: Sample | undefined) => {
  const dir = snakemakeWorkspace(n)
  log(`\n== snakemake -n, ${label(n)} stages, ${dir}; load ${load()}`)
  const samples: Array<Sample> = []
  for (let i = 0; i < reps; i++) {
    const r = timedCommand("snakemake", [
      "-n",
      "--cores",
      "1",
      "--snakefile",
      path.join(dir, "Snakefile"),
      "--directory",
      dir
    ])
    const out = r.stdout + r.stderr
    if (r.status !== 0 || !/Nothing to be done/.test(out)) {
      throw new Error(`snakemake -n did not report 'Nothing to be done' (status ${r.status}):\n${out.slice(-2000)}`)
    }
    samples.push(r.sample)
    // One long run says enough; repeating a minute-long dry run only costs the session time.
    if (r.sample.wallMs > 60_000) break
  }
  const snake = summarize(samples)
  log(`  snakemake -n: ${fmtSample(snake)} ("Nothing to be done"), median of ${samples.length}`)
  if (ours) {
    log(`  our CLI plan: ${fmtSample(ours)}`)
    log(
      `  snakemake / ours: ${(snake.wallMs / ours.wallMs).toFixed(1)}x wall, ${
        (snake.cpuMs / ours.cpuMs).toFixed(1)
      }x CPU (target >= 10x)`
    )
  }
  if (!args.keep) fs.rmSync(dir, { recursive: true, force: true })
  return snake
}

// ---------------------------------------------------------------------------------------------
// 3. Stat cache and hashing throughput

const canDropCaches = () => {
  try {
    fs.accessSync("/proc/sys/vm/drop_caches", fs.constants.W_OK)
    return true
  } catch {
    return false
  }
}

/** Drops the page cache so the next read comes from disk (root only; affects the whole machine briefly). */
const dropCaches = () => {
  spawnSync("sync")
  fs.writeFileSync("/proc/sys/vm/drop_caches", "3")
}

const rawRead = (file: string) => {
  // The same chunk size and read loop as sha256File, minus the hash: the difference is the hash's cost.
  const buffer = Buffer.allocUnsafe(8 * 1024 * 1024)
  const fd = fs.openSync(file, "r")
  let total = 0
  try {
    for (;;) {
      const n = fs.readSync(fd, buffer, 0, buffer.length, null)
      if (n === 0) break
      total += n
    }
  } finally {
    fs.closeSync(fd)
  }
  return total
}

const ddRead = (file: string) => {
  const r = spawnSync("dd", [`if=${file}`, "of=/dev/null", "bs=8M"], { encoding: "utf8" })
  if (r.status !== 0) throw new Error(`dd failed: ${r.stderr}`)
}

const measureStatCache = async () => {
  const files = Number(args["big-files"])
  const mb = Number(args["big-mb"])
  const totalBytes = files * mb * 1024 * 1024
  const workspace = path.join(workdir, "bigfiles")
  fs.mkdirSync(workdir, { recursive: true })
  const free = (() => {
    const s = fs.statfsSync(workdir)
    return s.bavail * s.bsize
  })()
  log(`\n== stat cache: ${files} x ${mb} MiB in ${workspace}; ${(free / 2 ** 30).toFixed(0)} GiB free; load ${load()}`)
  // The outputs plus their staging copies never coexist (promote is a rename), but leave room for others.
  if (totalBytes + 4 * 2 ** 30 > free) {
    log(`  SKIPPED: not enough free space for ${(totalBytes / 2 ** 30).toFixed(1)} GiB plus 4 GiB of headroom`)
    return undefined
  }
  process.env.FLAME_BENCH_BIG_FILES = String(files)
  process.env.FLAME_BENCH_BIG_MB = String(mb)
  try {
    fs.rmSync(workspace, { recursive: true, force: true })
    const populate = await timed(() => runInProcess(bigfiles, "default", workspace))
    if (populate.value.executed !== files) throw new Error(`bigfiles populate executed ${populate.value.executed}`)
    log(`  populate (write + hash ${(totalBytes / 2 ** 30).toFixed(1)} GiB): ${fmtSample(populate.sample)}`)
    const outputs = fs.readdirSync(path.join(workspace, "artifacts", "big"), { recursive: true })
      .map(String).filter((p) => p.endsWith(BIG_OUTPUT)).map((p) => path.join(workspace, "artifacts", "big", p))
    if (outputs.length !== files) throw new Error(`expected ${files} outputs, found ${outputs.length}`)

    const cold = !args["warm-only"] && canDropCaches()
    // Status of the unchanged workspace: page cache dropped first when possible, so a read would show.
    if (cold) dropCaches()
    const status = await timed(() => planInProcess(bigfiles, "default", workspace))
    const fresh = status.value.entries.every((e) => e.status === "fresh")
    log(
      `  status (resolve + plan, fresh services) of the unchanged workspace: ${fmtSample(status.sample)}, ` +
        `bytesHashed = ${status.value.bytesHashed}, all fresh: ${fresh}`
    )
    const cliStatus = skip.has("cli") ? undefined : cli(["status", "bigfiles", "--workspace", workspace])
    if (cliStatus) {
      if (!cliStatus.stdout.includes(`${files} of ${files} stages fresh`)) {
        throw new Error(`CLI status: ${cliStatus.stdout}${cliStatus.stderr}`)
      }
      log(`  CLI status: ${fmtSample(cliStatus.sample)}`)
    }

    // Hashing when needed: the same files, each way measured under the same cache state.
    const modes = cold ? ["cold", "warm"] as const : ["warm"] as const
    const throughput: Record<string, Record<string, Sample>> = {}
    for (const mode of modes) {
      const prepare = () => {
        if (mode === "cold") dropCaches()
        else for (const f of outputs) rawRead(f)
      }
      const perWay: Record<string, Sample> = {}
      const way = async (name: string, f: () => Promise<void> | void) => {
        prepare()
        const { sample } = await timed(async () => {
          await f()
        })
        perWay[name] = sample
        // Per CPU-second too: on a shared machine the wall rate is the scheduler's, the CPU rate the code's.
        log(
          `  ${mode.padEnd(4)} ${name.padEnd(44)} ${fmtRate(totalBytes, sample.wallMs)} wall, ` +
            `${fmtRate(totalBytes, sample.cpuMs)} per CPU-second (${fmtSample(sample)})`
        )
      }
      await way("dd bs=8M (reference read)", () => outputs.forEach(ddRead))
      await way("raw read (readSync, 8 MiB chunks)", () => {
        for (const f of outputs) rawRead(f)
      })
      await way("sha256File (src/store/ContentHasher.ts)", () => {
        for (const f of outputs) sha256File(f)
      })
      // The engine's own path: a new mtime with the same bytes must be re-hashed once and found intact.
      let rehashed = 0
      await way("status after touch (StatCache re-hash)", async () => {
        const now = Date.now() / 1000
        for (const f of outputs) fs.utimesSync(f, now, now)
        const r = await planInProcess(bigfiles, "default", workspace)
        rehashed = r.bytesHashed
        if (!r.entries.every((e) => e.status === "fresh")) throw new Error("touched outputs were judged modified")
      })
      log(`       (status after touch read ${(rehashed / 2 ** 30).toFixed(2)} GiB, all fresh)`)
      throughput[mode] = perWay
    }
    // Does status remember what it hashed? A second status after the touch should read nothing.
    const again = await planInProcess(bigfiles, "default", workspace)
    log(
      `  a second status after that: bytesHashed = ${again.bytesHashed}` +
        (again.bytesHashed > 0 ? " (plan/status do not persist the stat cache; only run flushes it)" : "")
    )
    return {
      files,
      mb,
      totalBytes,
      cold,
      populate: populate.sample,
      status: { ...status.sample, bytesHashed: status.value.bytesHashed },
      cliStatus: cliStatus?.sample,
      throughput,
      secondStatusBytesHashed: again.bytesHashed
    }
  } finally {
    if (!args.keep) fs.rmSync(workspace, { recursive: true, force: true })
  }
}

// ---------------------------------------------------------------------------------------------

const main = async () => {
  fs.mkdirSync(workdir, { recursive: true })
  fs.mkdirSync(outDir, { recursive: true })
  log(
    `engine benchmark: ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`
  )
  log(`workdir ${workdir}; load average ${load()}; ${reps} repetitions, medians`)
  if (!skip.has("cli")) {
    bundle = await buildBenchCli()
    log(`bench CLI bundle: ${path.relative(process.cwd(), bundle)}`)
    // The fixed cost every command pays, to tell start-up from per-stage work in the figures below.
    const bare = summarize(Array.from({ length: reps }, () => timedCommand(process.execPath, ["-e", "0"]).sample))
    const version = summarize(Array.from({ length: reps }, () => cli(["--version"]).sample))
    // What a user types: bin/flame-pipe.js (it answers --version itself; target <= 150 ms).
    const binVersion = summarize(
      Array.from({ length: reps }, () => timedCommand(process.execPath, [binPath, "--version"]).sample)
    )
    // The CLI proper: help loads effect, @effect/cli and the command descriptors, but no command.
    const help = summarize(Array.from({ length: reps }, () => cli(["plan", "--help"]).sample))
    log(
      `start-up: bare node ${fmtSample(bare)}; flame-pipe --version ${fmtSample(binVersion)}; bench CLI --version ` +
        `${fmtSample(version)}; plan --help ${fmtSample(help)}`
    )
    row("CLI start-up (--version)", fmtSample(version), `bare node: ${fmtSample(bare)}`)
    row(
      "flame-pipe --version (bin/flame-pipe.js)",
      fmtSample(binVersion),
      `<= 150 ms: ${binVersion.wallMs <= 150 ? "ok" : "FAIL"}`
    )
    row("CLI start-up (plan --help, no command loaded)", fmtSample(help), "")
    results.startup = { bareNode: bare, cliVersion: version, binVersion, planHelp: help }
  }

  const bySize: Array<SizeResult> = []
  if (!skip.has("noop")) {
    let perStage: number | undefined
    for (const n of sizes) {
      const r = await measureSize(n, perStage)
      if (r === undefined) continue
      bySize.push(r)
      if (r.populate && !r.populate.reused) perStage = r.populate.wallMs / n
    }
  }
  results.sizes = bySize

  for (const r of bySize) {
    row(
      `no-op run ${label(r.n)}, in-process`,
      fmtSample(r.noopRun),
      r.n === 1000 && r.noopRun.wallMs < 1000 ? "< 1 s" : ""
    )
    if (r.cliRun) {
      row(`no-op run ${label(r.n)}, CLI`, fmtSample(r.cliRun), r.n === 1000 && r.cliRun.wallMs < 1000 ? "< 1 s" : "")
    }
    if (r.cliPlan) row(`no-op plan ${label(r.n)}, CLI, from the memo`, fmtSample(r.cliPlan))
    if (r.cliPlanFull) row(`no-op plan ${label(r.n)}, CLI, memo off`, fmtSample(r.cliPlanFull))
    if (r.cliPlanRecording) row(`no-op plan ${label(r.n)}, CLI, after a run (records)`, fmtSample(r.cliPlanRecording))
    if (r.populate && !r.populate.reused) {
      row(
        `populate ${label(r.n)} (jobs 2)`,
        `${fmtSample(r.populate)}, ${(r.populate.wallMs / r.n).toFixed(2)} ms/stage`
      )
    }
  }
  const small = bySize[0]
  const large = bySize[bySize.length - 1]
  if (small && large && large.n > small.n) {
    const bound = large.n / small.n
    const ratio = (key: "noopRun" | "cliRun", measure: "wallMs" | "cpuMs") => {
      const a = small[key]?.[measure]
      const b = large[key]?.[measure]
      return a === undefined || b === undefined ? NaN : b / a
    }
    for (const [key, name] of [["noopRun", "in-process"], ["cliRun", "CLI"]] as const) {
      const wall = ratio(key, "wallMs")
      const cpu = ratio(key, "cpuMs")
      if (Number.isNaN(wall)) continue
      log(
        `\nno-op run ${name}, ${label(large.n)} / ${label(small.n)}: ${wall.toFixed(1)}x wall, ${cpu.toFixed(1)}x CPU`
      )
      row(
        `no-op run ${name}, ${label(large.n)}/${label(small.n)}`,
        `${wall.toFixed(1)}x wall, ${cpu.toFixed(1)}x CPU`,
        `${cpu <= bound ? "ok" : "FAIL"}: linear bound ${bound}`
      )
    }
    results.linearBound = bound
  }

  if (!skip.has("snakemake")) {
    const version = snakemakeVersion()
    if (version === undefined) {
      log("\nsnakemake not found (apt-get install -y snakemake); skipping the comparison")
    } else {
      log(`\nsnakemake ${version}`)
      const snake: Array<{
        n: number
        snakemake: Sample
        ours: Sample | undefined
        oursMemoOff: Sample | undefined
      }> = []
      for (const n of snakemakeSizes) {
        const size = bySize.find((r) => r.n === n)
        const ours = size?.cliPlan
        const s = measureSnakemake(n, ours)
        snake.push({ n, snakemake: s, ours, oursMemoOff: size?.cliPlanFull })
        row(`snakemake -n ${label(n)}`, fmtSample(s))
        for (const [what, sample] of [["from the memo", ours], ["memo off", size?.cliPlanFull]] as const) {
          if (sample === undefined) continue
          const x = s.wallMs / sample.wallMs
          row(
            `snakemake -n / our plan, ${label(n)}, ${what}`,
            `${x.toFixed(1)}x wall, ${(s.cpuMs / sample.cpuMs).toFixed(1)}x CPU`,
            what === "memo off" ? "" : x >= 10 ? "ok: >= 10x" : "FAIL: < 10x"
          )
        }
      }
      results.snakemake = { version, runs: snake }
    }
  }

  if (!skip.has("statcache")) {
    const s = await measureStatCache()
    results.statCache = s
    if (s) {
      row(
        `status, ${s.files} x ${s.mb} MiB unchanged`,
        `${fmtSample(s.status)}, bytesHashed ${s.status.bytesHashed}`,
        s.status.bytesHashed === 0 ? "ok: reads nothing" : "FAIL"
      )
      for (const [mode, ways] of Object.entries(s.throughput)) {
        const wall = (name: string) => fmtRate(s.totalBytes, ways[name]?.wallMs ?? NaN)
        const cpu = (name: string) => fmtRate(s.totalBytes, ways[name]?.cpuMs ?? NaN)
        const sha = "sha256File (src/store/ContentHasher.ts)"
        const rehash = "status after touch (StatCache re-hash)"
        row(
          `hashing, ${mode} cache`,
          `sha256File ${wall(sha)} wall (${cpu(sha)}/CPU-s), status re-hash ${wall(rehash)} wall (${
            cpu(rehash)
          }/CPU-s)`,
          `reads: raw ${wall("raw read (readSync, 8 MiB chunks)")}, dd ${wall("dd bs=8M (reference read)")}`
        )
      }
    }
  }

  results.finishedAt = new Date().toISOString()
  const resultFile = path.join(outDir, `results-${Date.now()}.json`)
  fs.writeFileSync(resultFile, JSON.stringify(results, null, 2))

  const widths = [0, 1, 2].map((i) => Math.max(...tableRows.map((r) => (r[i] ?? "").length), 6))
  log(`\n== summary (${os.cpus().length} cores; load average now ${load()})`)
  for (const r of tableRows) log(r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd())
  log(`\nfull results: ${path.relative(process.cwd(), resultFile)}`)
  if (!args.keep) {
    for (const n of sizes) fs.rmSync(path.join(workdir, `generated-${label(n)}`), { recursive: true, force: true })
  } else log(`workspaces kept in ${workdir} (reused by the next --keep run)`)
}

await main()
