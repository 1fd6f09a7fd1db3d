/**
 * Tokenizes shards on worker threads (tokenization is CPU-bound and synchronous, so concurrent
 * fibers on one thread would not overlap). Each worker loads the tokenizer once and is reused.
 * A failing shard stops the others; shards already finished keep their (complete) outputs.
 */
import { Effect } from "effect"
import * as fs from "node:fs"
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
  /** The worker entry: by default the bundled dist/shard-worker.mjs beside the CLI bundle, else shardWorker.ts. */
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

/** The bundled CLI ships its own bundled worker beside it (dist/shard-worker.mjs); sources use shardWorker.ts. */
const defaultWorker = (): URL => {
  const bundled = new URL("./shard-worker.mjs", import.meta.url)
  return fs.existsSync(bundled) ? bundled : new URL("./shardWorker.ts", import.meta.url)
}

/**
 * Worker threads kept between shards, per tokenizer: the tokenizer is loaded once per thread, and a
 * pipeline's tokenize stages (one per shard, run concurrently by the executor) each borrow a thread,
 * so shards are tokenized on as many cores as the executor gives them. Idle threads do not keep the
 * process alive.
 */
class ShardPool {
  private readonly idle = new Map<string, Array<Worker>>()

  run(setup: WorkerSetup, job: ShardJob, workerUrl: URL): Effect.Effect<ShardResult, ShardError> {
    const key = JSON.stringify([workerUrl.href, setup.tokenizerPath, setup.eodToken ?? null])
    return Effect.async<ShardResult, ShardError>((resume) => {
      const worker = this.idle.get(key)?.pop() ?? startWorker(workerUrl, setup)
      worker.ref()
      let settled = false
      /** Detaches from the worker once; false when it already was. */
      const settle = () => {
        if (settled) return false
        settled = true
        worker.off("message", onMessage)
        worker.off("error", onError)
        return true
      }
      const done = (effect: Effect.Effect<ShardResult, ShardError>, reusable: boolean) => {
        if (!settle()) return
        const idle = this.idle.get(key) ?? []
        if (reusable && idle.length < os.availableParallelism()) {
          worker.unref()
          idle.push(worker)
          this.idle.set(key, idle)
        } else void worker.terminate()
        resume(effect)
      }
      const onMessage = (reply: WorkerReply) => {
        if ("stats" in reply) {
          const { cpuSeconds, implementation, seconds, stats } = reply
          return done(Effect.succeed({ job, stats, seconds, cpuSeconds, implementation }), true)
        }
        if ("error" in reply) {
          return done(Effect.fail(reviveError(reply.error)), reply.error._tag !== "TokenizerLoadError")
        }
        done(Effect.die(new Error(`shard worker defect: ${reply.defect}`)), false)
      }
      const onError = (e: Error) => done(Effect.die(e), false)
      worker.on("message", onMessage)
      worker.on("error", onError)
      worker.postMessage({ index: 0, job } satisfies WorkerRequest)
      // Interrupted mid-shard: the thread goes (its partial output is in a staging area nobody promotes).
      return Effect.sync(() => {
        if (settle()) void worker.terminate()
      })
    })
  }
}

const pool = new ShardPool()

/** Tokenizes one shard on a pooled worker thread, off the caller's thread. */
export const tokenizeOnWorker = (
  options: { readonly tokenizerPath: string; readonly eodToken?: string; readonly workerModule?: URL },
  job: ShardJob
): Effect.Effect<ShardResult, ShardError> =>
  pool.run(
    options.eodToken === undefined
      ? { tokenizerPath: options.tokenizerPath }
      : { tokenizerPath: options.tokenizerPath, eodToken: options.eodToken },
    job,
    options.workerModule ?? defaultWorker()
  )

/** Several shards on up to `concurrency` threads; the first failure stops the rest. */
export const tokenizeShardsInParallel = (
  options: ParallelOptions
): Effect.Effect<ReadonlyArray<ShardResult>, ShardError> =>
  Effect.forEach(options.jobs, (job) => tokenizeOnWorker(options, job), {
    concurrency: Math.max(1, Math.min(options.concurrency ?? os.availableParallelism(), options.jobs.length))
  })
