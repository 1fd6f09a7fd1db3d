#!/usr/bin/env node
// A small child worker for the toy pipeline: sums the squares in its input files, speaking the
// worker protocol (docs/worker-protocol.md) on fd 3. Its knobs make it useful to tests: it can be
// slow (--sleep-ms per step) or fail at a given step (--fail-at).
import * as fs from "node:fs"

const args = Object.fromEntries(
  process.argv.slice(2).reduce(
    (pairs, arg, i, all) => (arg.startsWith("--") ? [...pairs, [arg.slice(2), all[i + 1]]] : pairs),
    []
  )
)
const fd = process.env.FLAME_PROTOCOL_FD ? Number(process.env.FLAME_PROTOCOL_FD) : 1
const send = (message) => fs.writeSync(fd, JSON.stringify(message) + "\n")
const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)

const inputs = String(args.inputs ?? "").split(",").filter(Boolean)
const sleepMs = Number(args["sleep-ms"] ?? 0)
const failAt = args["fail-at"] === undefined ? -1 : Number(args["fail-at"])
if (args["bad-protocol"] === "true") {
  fs.writeSync(fd, "this is not a protocol message\n")
}

let total = 0
let step = 0
const numbers = inputs.flatMap((file) => JSON.parse(fs.readFileSync(file, "utf8")))
console.log(`summing ${numbers.length} numbers from ${inputs.length} files`)
for (const n of numbers) {
  step++
  if (step === failAt) {
    console.error(`failing on purpose at step ${step}`)
    process.exit(3)
  }
  total += n
  send({ type: "progress", step, total: numbers.length })
  send({ type: "metric", name: "partial_sum", step, value: total })
  if (sleepMs > 0) sleep(sleepMs)
}
fs.writeFileSync(args.output, JSON.stringify({ total }) + "\n")
send({ type: "log", level: "info", message: `total ${total}` })
send({ type: "result", value: { total, count: numbers.length } })
