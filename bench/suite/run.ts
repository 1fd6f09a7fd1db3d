/**
 * The tiny scaling suite end to end, through the real CLI, in a fresh workspace: its wall time, the
 * tokens/s of each scale's training, and the engine's overhead — wall time not spent inside a stage
 * body (a worker process, or a TypeScript body such as tokenization) — as a fraction of the wall time.
 *
 *   npx tsx bench/suite/run.ts [--jobs 2] [--workspace DIR] [--keep]
 *
 * Worker lifetimes come from the `[engine] worker exited ... ran from A to B` line each stage log
 * ends with; stages without a worker count their whole execution as body time (so the overhead
 * figure, if anything, errs low by the few milliseconds those stages spend hashing their outputs).
 * A second, no-op run is timed too. The machine may be shared: CPU times and the load average are
 * printed next to the wall times.
 */
import Database from "better-sqlite3"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { parseArgs } from "node:util"

const { values: args } = parseArgs({
  options: {
    jobs: { type: "string", default: "2" },
    workspace: { type: "string" },
    keep: { type: "boolean", default: false }
  }
})

const root = path.join(import.meta.dirname, "..", "..")
const bin = path.join(root, "bin", "flame-pipe.js")
const ws = args.workspace ?? fs.mkdtempSync(path.join(os.tmpdir(), "flame-bench-suite-"))
const load = () => os.loadavg().map((l) => l.toFixed(2)).join(" ")

/** Runs the CLI under bash so `times` reports the CPU of the CLI and every process it started. */
const timedRun = (label: string) => {
  const cmd = `${JSON.stringify(process.execPath)} ${JSON.stringify(bin)} run scaling-suite --preset tiny ` +
    `--workspace ${JSON.stringify(ws)} --jobs ${args.jobs} --json; times >&2`
  const t0 = performance.now()
  const startEpoch = Date.now()
  const out = spawnSync("bash", ["-c", cmd], { cwd: root, encoding: "utf8", maxBuffer: 1 << 28 })
  const wallMs = performance.now() - t0
  if (out.status !== 0) throw new Error(`${label} failed (exit ${out.status}):\n${out.stderr.slice(-3000)}`)
  // `times` prints the shell's own, then its children's user and system times: "0m1.234s 0m0.567s".
  const lines = out.stderr.trim().split("\n")
  const children = (lines[lines.length - 1] ?? "").trim().split(/\s+/).map((t) => {
    const m = /^(\d+)m([\d.]+)s$/.exec(t)
    return m ? Number(m[1]) * 60 + Number(m[2]) : 0
  })
  const summary = JSON.parse(out.stdout) as { executed: number; cached: number; stages: ReadonlyArray<unknown> }
  return { wallMs, startEpoch, endEpoch: Date.now(), cpuS: (children[0] ?? 0) + (children[1] ?? 0), summary }
}

type Interval = readonly [number, number]

/** Total length of the union of intervals. */
const unionMs = (intervals: ReadonlyArray<Interval>): number => {
  const sorted = [...intervals].sort((a, b) => a[0] - b[0])
  let total = 0
  let [start, end] = [Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY]
  for (const [a, b] of sorted) {
    if (a > end) {
      if (end > start) total += end - start
      ;[start, end] = [a, b]
    } else end = Math.max(end, b)
  }
  if (end > start) total += end - start
  return total
}

/** The stretches of [from, to] when no interval is open, longest first. */
const idleStretches = (intervals: ReadonlyArray<Interval>, from: number, to: number) => {
  const sorted = [...intervals].sort((a, b) => a[0] - b[0])
  const out: Array<{ from: number; to: number; after: number; before: number }> = []
  let end = from
  let last = -1
  sorted.forEach(([a, b], i) => {
    if (a > end) out.push({ from: end, to: a, after: last, before: i })
    if (b > end) {
      end = b
      last = i
    }
  })
  if (to > end) out.push({ from: end, to, after: last, before: -1 })
  return { sorted, stretches: out.sort((x, y) => (y.to - y.from) - (x.to - x.from)) }
}

const WORKER_SPAN = /\[engine\] worker exited .* ran from (\d+) to (\d+) \(epoch ms\)/g

const main = () => {
  console.log(`tiny suite benchmark: ${os.cpus().length} cpus, node ${process.version}, workspace ${ws}`)
  console.log(`load average before: ${load()}`)
  const first = timedRun("first run")
  const again = timedRun("no-op run")

  const db = new Database(path.join(ws, "lineage.sqlite"), { readonly: true })
  const rows = db.prepare(`
    select e.stage_id as stage, e.started_at as startedAt, e.ended_at as endedAt, e.log_path as log,
           e.worker_pid as pid, e.result as result
    from executions e where e.status = 'succeeded' order by e.started_at`).all() as Array<{
    stage: string
    startedAt: number
    endedAt: number
    log: string
    pid: number | null
    result: string | null
  }>
  db.close()

  const bodies: Array<Interval> = []
  const executions: Array<Interval> = []
  let workerMs = 0
  /** Per stage kind: time in an execution before its worker started and after it exited. */
  const gaps = new Map<string, { count: number; before: number; after: number }>()
  for (const row of rows) {
    executions.push([row.startedAt, row.endedAt])
    const logText = fs.existsSync(path.join(ws, row.log)) ? fs.readFileSync(path.join(ws, row.log), "utf8") : ""
    const spans = [...logText.matchAll(WORKER_SPAN)].map((m) => [Number(m[1]), Number(m[2])] as const)
    if (spans.length > 0) {
      for (const span of spans) {
        bodies.push(span)
        workerMs += span[1] - span[0]
      }
      const kind = row.stage.split("/")[0] as string
      const gap = gaps.get(kind) ?? { count: 0, before: 0, after: 0 }
      gap.count++
      gap.before += (spans[0] as Interval)[0] - row.startedAt
      gap.after += row.endedAt - (spans[spans.length - 1] as Interval)[1]
      gaps.set(kind, gap)
    } else bodies.push([row.startedAt, row.endedAt])
  }
  const inBodies = unionMs(bodies)
  const inExecutions = unionMs(executions)
  const overhead = first.wallMs - inBodies

  console.log(`\n== first run: ${first.summary.executed} stages executed, ${first.summary.cached} cached`)
  console.log(`wall ${(first.wallMs / 1000).toFixed(1)} s, CPU ${first.cpuS.toFixed(1)} s (CLI + workers)`)
  console.log(`time with a stage body running (union): ${(inBodies / 1000).toFixed(1)} s`)
  console.log(`time with an execution open (union):    ${(inExecutions / 1000).toFixed(1)} s`)
  console.log(`sum of worker lifetimes:                ${(workerMs / 1000).toFixed(1)} s`)
  console.log(
    `engine overhead: ${(overhead / 1000).toFixed(2)} s of ${(first.wallMs / 1000).toFixed(1)} s = ${
      (100 * overhead / first.wallMs).toFixed(2)
    }%   (target < 2%)`
  )

  // Where the engine's time goes: the longest stretches with no execution open at all.
  const idle = idleStretches(executions, first.startEpoch, first.endEpoch)
  const named = new Map(rows.map((r) => [`${r.startedAt},${r.endedAt}`, r.stage]))
  const nameOf = (i: number, edge: string) => {
    const interval = idle.sorted[i]
    return interval === undefined ? edge : named.get(`${interval[0]},${interval[1]}`) ?? "?"
  }
  console.log(`longest stretches with no execution open (of ${((first.wallMs - inExecutions) / 1000).toFixed(2)} s):`)
  for (const stretch of idle.stretches.slice(0, 5)) {
    console.log(
      `  ${String(stretch.to - stretch.from).padStart(6)} ms  after ${nameOf(stretch.after, "CLI start")}, before ${
        nameOf(stretch.before, "CLI exit")
      }`
    )
  }

  console.log(`per worker stage, mean ms in the execution before the worker starts / after it exits:`)
  for (const [kind, gap] of gaps) {
    console.log(
      `  ${kind.padEnd(8)} x${String(gap.count).padEnd(4)} ${(gap.before / gap.count).toFixed(1).padStart(7)} / ${
        (gap.after / gap.count).toFixed(1)
      }`
    )
  }

  console.log(`\n== training, per scale`)
  console.log(`${"scale".padEnd(24)} ${"iters".padStart(6)} ${"tokens".padStart(9)} ${"tokens/s".padStart(9)}`)
  for (const row of rows.filter((r) => r.stage.startsWith("train/"))) {
    const r = JSON.parse(row.result ?? "{}") as { iterations?: number; tokens?: number; tokensPerSecond?: number }
    console.log(
      `${row.stage.slice("train/".length).padEnd(24)} ${String(r.iterations ?? "-").padStart(6)} ${
        String(r.tokens ?? "-").padStart(9)
      } ${(r.tokensPerSecond ?? 0).toFixed(0).padStart(9)}`
    )
  }

  console.log(`\n== second run (nothing stale): ${again.summary.executed} executed, ${again.summary.cached} cached`)
  console.log(`wall ${(again.wallMs / 1000).toFixed(2)} s, CPU ${again.cpuS.toFixed(2)} s`)
  console.log(`\nload average after: ${load()}`)
  if (!args.keep && args.workspace === undefined) fs.rmSync(ws, { recursive: true, force: true })
}

main()
