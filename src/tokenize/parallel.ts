/**
 * Tokenizes several shards at once on worker threads (tokenization is CPU-bound JavaScript, so
 * concurrent fibers on one thread would not overlap). Each worker loads the tokenizer once.
 * Stops at the first failing shard; shards already finished keep their (complete) outputs.
 */
import { Effect } from "effect"
import { createRequire } from "node:module"
import * as os from "node:os"
import { pathToFileURL } from "node:url"
import { Worker } from "node:worker_threads"
import { BadInputError, ShardIoError, TokenizerLoadError } from "./errors.ts"
import type { ZstdDecoder } from "./jsonlSource.ts"
import type { OnBadLine, ShardStats } from "./tokenizeShard.ts"

export interface ShardJob {
  readonly input: string
  readonly outputPrefix: string
  readonly onBadLine?: OnBadLine
  readonly textKey?: string
  readonly zstd?: ZstdDecoder
}

export interface ParallelOptions {
  readonly tokenizerPath: string
  readonly jobs: ReadonlyArray<ShardJob>
  readonly eodToken?: string
  /** Worker threads; defaults to the number of CPUs, at most one per job. */
  readonly concurrency?: number
  /**
   * The worker entry. Defaults to shardWorker.ts next to this module (run through tsx); a bundled
   * build must point this at its own bundled copy of the worker.
   */
  readonly workerModule?: URL
}

export interface ShardResult {
  readonly job: ShardJob
  readonly stats: ShardStats
  /** Wall-clock seconds the worker spent on this shard. */
  readonly seconds: number
  /** CPU seconds of the worker's thread on this shard (Linux; undefined elsewhere). */
  readonly cpuSeconds: number | undefined
  /** The encoder the worker used. */
  readonly implementation: "native" | "js"
}

/** @internal messages between parallel.ts and shardWorker.ts */
export interface WorkerSetup {
  readonly tokenizerPath: string
  readonly eodToken?: string
}
/** @internal */
export interface WorkerRequest {
  readonly index: number
  readonly job: ShardJob
}
/** @internal */
export type WorkerReply =
  | {
    readonly index: number
    readonly stats: ShardStats
    readonly seconds: number
    readonly cpuSeconds: number | undefined
    readonly implementation: "native" | "js"
  }
  | { readonly index: number; readonly error: { readonly _tag: string } & Record<string, unknown> }
  | { readonly index: number; readonly defect: string }

type ShardError = BadInputError | ShardIoError | TokenizerLoadError

const reviveError = (e: { readonly _tag: string } & Record<string, unknown>): ShardError => {
  const { _tag, ...fields } = e
  switch (_tag) {
    case "BadInputError":
      return new BadInputError(fields as ConstructorParameters<typeof BadInputError>[0])
    case "TokenizerLoadError":
      return new TokenizerLoadError(fields as ConstructorParameters<typeof TokenizerLoadError>[0])
    default:
      return new ShardIoError(fields as ConstructorParameters<typeof ShardIoError>[0])
  }
}

/**
 * A TypeScript worker needs tsx's loader, and loader hooks of this thread do not carry over to
 * workers (nor does `--import` in a worker's execArgv on Node 20): a small bootstrap registers tsx
 * inside the worker, then imports the entry.
 */
const startWorker = (url: URL, setup: WorkerSetup): Worker => {
  if (!url.pathname.endsWith(".ts")) return new Worker(url, { workerData: setup })
  // createRequire works everywhere (import.meta.resolve is missing under some test runners).
  const api = pathToFileURL(createRequire(import.meta.url).resolve("tsx/esm/api")).href
  const bootstrap = `import(${JSON.stringify(api)}).then((tsx) => { tsx.register(); return import(${
    JSON.stringify(url.href)
  }) })`
  return new Worker(bootstrap, { eval: true, workerData: setup })
}

const defaultWorker = (): URL => new URL("./shardWorker.ts", import.meta.url)

export const tokenizeShardsInParallel = (
  options: ParallelOptions
): Effect.Effect<ReadonlyArray<ShardResult>, ShardError> =>
  Effect.async<ReadonlyArray<ShardResult>, ShardError>((resume) => {
    const jobs = options.jobs
    if (jobs.length === 0) return resume(Effect.succeed([]))
    const workerUrl = options.workerModule ?? defaultWorker()
    const count = Math.max(1, Math.min(options.concurrency ?? os.availableParallelism(), jobs.length))
    const setup: WorkerSetup = options.eodToken === undefined
      ? { tokenizerPath: options.tokenizerPath }
      : { tokenizerPath: options.tokenizerPath, eodToken: options.eodToken }
    const results: Array<ShardResult | undefined> = new Array(jobs.length)
    const workers: Array<Worker> = []
    let next = 0
    let remaining = jobs.length
    let finished = false
    const finish = (effect: Effect.Effect<ReadonlyArray<ShardResult>, ShardError>): void => {
      if (finished) return
      finished = true
      for (const w of workers) void w.terminate()
      resume(effect)
    }
    const feed = (w: Worker): void => {
      if (next < jobs.length) {
        const request: WorkerRequest = { index: next, job: jobs[next] as ShardJob }
        next++
        w.postMessage(request)
      }
    }
    for (let i = 0; i < count; i++) {
      const w = startWorker(workerUrl, setup)
      workers.push(w)
      w.on("message", (reply: WorkerReply) => {
        if ("stats" in reply) {
          const { cpuSeconds, implementation, seconds, stats } = reply
          results[reply.index] = { job: jobs[reply.index] as ShardJob, stats, seconds, cpuSeconds, implementation }
          if (--remaining === 0) return finish(Effect.succeed(results as Array<ShardResult>))
          return feed(w)
        }
        if ("error" in reply) return finish(Effect.fail(reviveError(reply.error)))
        finish(Effect.die(new Error(`shard worker defect: ${reply.defect}`)))
      })
      w.on("error", (e) => finish(Effect.die(e)))
      feed(w)
    }
    return Effect.sync(() => {
      finished = true
      for (const w of workers) void w.terminate()
    })
  })
