/**
 * Stages of the toy pipeline: a few TypeScript stages and one child worker, small enough for tests
 * to run end to end through the real CLI in a second.
 */
import { Effect, Schema } from "effect"
import * as fs from "node:fs"
import { StageFailed } from "../../src/domain/Errors.ts"
import { fromRoot } from "../../src/ProjectRoot.ts"
import { define } from "../../src/Stage.ts"
import { runWorker } from "../../src/worker/runWorker.ts"

const readJson = <A>(stage: string, file: string) =>
  Effect.try({
    try: () => JSON.parse(fs.readFileSync(file, "utf8")) as A,
    catch: (cause) => new StageFailed({ stage, reason: `cannot read ${file}: ${String(cause)}` })
  })

const writeJson = (stage: string, file: string, value: unknown) =>
  Effect.try({
    try: () => fs.writeFileSync(file, JSON.stringify(value) + "\n"),
    catch: (cause) => new StageFailed({ stage, reason: `cannot write ${file}: ${String(cause)}` })
  })

/** Deterministic pseudo-random integers (mulberry32), so outputs depend only on params. */
const mulberry32 = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const PositiveInt = Schema.Int.pipe(Schema.positive())

export const generate = define({
  kind: "toy/generate",
  version: "1",
  params: Schema.Struct({
    count: Schema.optionalWith(PositiveInt, { default: () => 100 }),
    seed: Schema.optionalWith(Schema.Int, { default: () => 1 }),
    max: Schema.optionalWith(PositiveInt, { default: () => 1000 })
  }),
  outputs: () => ({ "numbers.json": "file" }),
  result: Schema.Struct({ count: Schema.Number }),
  reproducibility: { _tag: "bitwise" },
  run: (ctx) =>
    Effect.gen(function*() {
      const next = mulberry32(ctx.params.seed)
      const numbers = Array.from({ length: ctx.params.count }, () => Math.floor(next() * ctx.params.max))
      yield* writeJson(ctx.stageId, ctx.output("numbers.json"), numbers)
      return { count: numbers.length }
    })
})

export const filter = define({
  kind: "toy/filter",
  version: "1",
  params: Schema.Struct({ threshold: Schema.optionalWith(Schema.Number, { default: () => 0 }) }),
  outputs: () => ({ "kept.json": "file" }),
  result: Schema.Struct({ kept: Schema.Number, dropped: Schema.Number }),
  reproducibility: { _tag: "bitwise" },
  run: (ctx) =>
    Effect.gen(function*() {
      const numbers = yield* readJson<Array<number>>(ctx.stageId, ctx.inputs.numbers!)
      const kept = numbers.filter((n) => n >= ctx.params.threshold)
      yield* writeJson(ctx.stageId, ctx.output("kept.json"), kept)
      return { kept: kept.length, dropped: numbers.length - kept.length }
    })
})

export const square = define({
  kind: "toy/square",
  version: "1",
  params: Schema.Struct({ shard: Schema.NonNegativeInt, shards: PositiveInt }),
  outputs: () => ({ "squares.json": "file" }),
  result: Schema.Struct({ count: Schema.Number }),
  reproducibility: { _tag: "bitwise" },
  run: (ctx) =>
    Effect.gen(function*() {
      const numbers = yield* readJson<Array<number>>(ctx.stageId, ctx.inputs.numbers!)
      const mine = numbers.filter((_, i) => i % ctx.params.shards === ctx.params.shard).map((n) => n * n)
      yield* writeJson(ctx.stageId, ctx.output("squares.json"), mine)
      return { count: mine.length }
    })
})

const sumWorker = fromRoot("stages", "toy", "sum-worker.mjs")

export const sum = define({
  kind: "toy/sum",
  version: "1",
  params: Schema.Struct({
    sleepMs: Schema.optionalWith(Schema.NonNegativeInt, { default: () => 0 }),
    failAt: Schema.optional(Schema.Int),
    badProtocol: Schema.optionalWith(Schema.Boolean, { default: () => false })
  }),
  outputs: () => ({ "total.json": "file" }),
  result: Schema.Struct({ total: Schema.Number, count: Schema.Number }),
  reproducibility: { _tag: "bitwise" },
  worker: () => sumWorker,
  run: (ctx) =>
    Effect.map(
      runWorker(ctx, {
        file: process.execPath,
        args: [
          sumWorker,
          "--inputs",
          Object.keys(ctx.inputs).sort().map((k) => ctx.inputs[k]).join(","),
          "--output",
          ctx.output("total.json"),
          "--sleep-ms",
          String(ctx.params.sleepMs),
          ...(ctx.params.failAt === undefined ? [] : ["--fail-at", String(ctx.params.failAt)]),
          ...(ctx.params.badProtocol ? ["--bad-protocol", "true"] : [])
        ]
      }),
      (value) => value as { total: number; count: number }
    )
})

export const report = define({
  kind: "toy/report",
  version: "1",
  params: Schema.Struct({ title: Schema.optionalWith(Schema.String, { default: () => "toy report" }) }),
  outputs: () => ({ "report.txt": "file" }),
  result: Schema.Struct({ lines: Schema.Number }),
  reproducibility: { _tag: "bitwise" },
  run: (ctx) =>
    Effect.gen(function*() {
      const { total } = yield* readJson<{ total: number }>(ctx.stageId, ctx.inputs.total!)
      const kept = yield* readJson<Array<number>>(ctx.stageId, ctx.inputs.kept!)
      const lines = [ctx.params.title, `numbers kept: ${kept.length}`, `sum of squares: ${total}`]
      yield* Effect.try({
        try: () => fs.writeFileSync(ctx.output("report.txt"), lines.join("\n") + "\n"),
        catch: (cause) => new StageFailed({ stage: ctx.stageId, reason: String(cause) })
      })
      return { lines: lines.length }
    })
})
