/**
 * What a run shows while it works. On a terminal: a live block with one line per running stage
 * (step/total, rate, ETA) under a scrolling list of finished stages. Elsewhere: plain lines.
 * With --json the human output goes to stderr so stdout carries only the summary.
 */
import { Context, Layer } from "effect"
import { formatMs } from "../format.ts"

export type StageEnd = "executed" | "cached" | "failed" | "interrupted" | "skipped"

export interface ReporterShape {
  readonly started: (stage: string, detail: string) => void
  readonly progress: (stage: string, step: number, total: number) => void
  readonly finished: (stage: string, end: StageEnd, ms: number, detail?: string) => void
  readonly info: (line: string) => void
  readonly close: () => void
}

export class Reporter extends Context.Tag("flame-pipe/Reporter")<Reporter, ReporterShape>() {
  static readonly silent = Layer.succeed(Reporter, {
    started: () => {},
    progress: () => {},
    finished: () => {},
    info: () => {},
    close: () => {}
  })

  static readonly forStream = (stream: NodeJS.WriteStream) =>
    Layer.sync(Reporter, () => (stream.isTTY ? liveReporter(stream) : plainReporter(stream)))
}

const symbols: Record<StageEnd, string> = {
  executed: "done",
  cached: "cached",
  failed: "FAILED",
  interrupted: "interrupted",
  skipped: "skipped"
}

const plainReporter = (stream: NodeJS.WriteStream): ReporterShape => {
  // Progress is reported at most every 10% per stage, so logs stay readable.
  const lastDecile = new Map<string, number>()
  return {
    started: (stage, detail) => stream.write(`start ${stage}${detail ? ` (${detail})` : ""}\n`),
    progress: (stage, step, total) => {
      if (total <= 0) return
      const decile = Math.floor((10 * step) / total)
      if (decile === lastDecile.get(stage)) return
      lastDecile.set(stage, decile)
      stream.write(`  ${stage} ${step}/${total}\n`)
    },
    finished: (stage, end, ms, detail) => {
      lastDecile.delete(stage)
      if (end === "cached") return
      stream.write(`${symbols[end]} ${stage} ${formatMs(ms)}${detail ? `: ${detail}` : ""}\n`)
    },
    info: (line) => stream.write(`${line}\n`),
    close: () => {}
  }
}

interface Live {
  readonly startedAt: number
  step: number
  total: number
  rate: number
  lastAt: number
  lastStep: number
}

const liveReporter = (stream: NodeJS.WriteStream): ReporterShape => {
  const running = new Map<string, Live>()
  let drawn = 0
  let cached = 0
  const clear = () => {
    if (drawn > 0) stream.write(`\x1b[${drawn}A\x1b[0J`)
    drawn = 0
  }
  const draw = () => {
    clear()
    const now = Date.now()
    const width = stream.columns ?? 100
    for (const [stage, live] of running) {
      const elapsed = formatMs(now - live.startedAt)
      let line = `  ${stage}  ${elapsed}`
      if (live.total > 0) {
        const pct = ((100 * live.step) / live.total).toFixed(0)
        const eta = live.rate > 0 ? formatMs((1000 * (live.total - live.step)) / live.rate) : "?"
        line += `  ${live.step}/${live.total} (${pct}%)  ${live.rate.toFixed(2)}/s  ETA ${eta}`
      }
      stream.write(`${line.slice(0, width - 1)}\n`)
      drawn++
    }
    if (cached > 0) {
      stream.write(`  (${cached} stages cached)\n`)
      drawn++
    }
  }
  const timer = setInterval(draw, 250)
  timer.unref()
  return {
    started: (stage) => {
      const now = Date.now()
      running.set(stage, { startedAt: now, step: 0, total: 0, rate: 0, lastAt: now, lastStep: 0 })
    },
    progress: (stage, step, total) => {
      const live = running.get(stage)
      if (!live) return
      const now = Date.now()
      // An exponential moving average keeps the rate steady when steps arrive in bursts.
      if (now - live.lastAt >= 500 && step > live.lastStep) {
        const instant = ((step - live.lastStep) * 1000) / (now - live.lastAt)
        live.rate = live.rate === 0 ? instant : 0.7 * live.rate + 0.3 * instant
        live.lastAt = now
        live.lastStep = step
      }
      live.step = step
      live.total = total
    },
    finished: (stage, end, ms, detail) => {
      running.delete(stage)
      if (end === "cached") {
        cached++
        return
      }
      clear()
      stream.write(`${symbols[end]} ${stage} ${formatMs(ms)}${detail ? `: ${detail}` : ""}\n`)
      draw()
    },
    info: (line) => {
      clear()
      stream.write(`${line}\n`)
      draw()
    },
    close: () => {
      clearInterval(timer)
      clear()
    }
  }
}
