/**
 * worker_threads entry for parallel.ts: loads the tokenizer once, then tokenizes the shards it is
 * sent, one at a time, answering each with its stats or its typed error.
 */
import { Effect, Either } from "effect"
import * as fs from "node:fs"
import { parentPort, workerData } from "node:worker_threads"
import type { WorkerReply, WorkerRequest, WorkerSetup } from "./parallel.ts"
import { threadCpuSeconds } from "./threadCpu.ts"
import { tokenizerFromJson } from "./Tokenizer.ts"
import { tokenizeShard } from "./tokenizeShard.ts"

const setup = workerData as WorkerSetup
const port = parentPort
if (port === null) throw new Error("shardWorker must run in a worker thread")

const loaded = Either.flatMap(
  Either.try({ try: () => fs.readFileSync(setup.tokenizerPath), catch: (e) => e as Error }),
  (bytes) =>
    tokenizerFromJson(
      bytes,
      setup.tokenizerPath,
      setup.eodToken === undefined ? {} : { eodToken: setup.eodToken }
    )
)

const reply = (message: WorkerReply): void => port.postMessage(message)

port.on("message", (request: WorkerRequest) => {
  if (Either.isLeft(loaded)) {
    const e = loaded.left
    reply({
      index: request.index,
      error: e instanceof Error && !("_tag" in e)
        ? { _tag: "TokenizerLoadError", path: setup.tokenizerPath, reason: `cannot read: ${e.message}` }
        : { ...(e as object), _tag: "TokenizerLoadError" }
    })
    return
  }
  const tokenizer = loaded.right
  const started = performance.now()
  const cpuStarted = threadCpuSeconds()
  Effect.runPromise(Effect.either(tokenizeShard({ ...request.job, tokenizer }))).then(
    (result) => {
      const cpuEnded = threadCpuSeconds()
      reply(
        Either.isRight(result)
          ? {
            index: request.index,
            stats: result.right,
            seconds: (performance.now() - started) / 1000,
            cpuSeconds: cpuStarted === undefined || cpuEnded === undefined ? undefined : cpuEnded - cpuStarted,
            implementation: tokenizer.implementation
          }
          : { index: request.index, error: { ...result.left } }
      )
    },
    (defect: unknown) => reply({ index: request.index, defect: String(defect) })
  )
})
