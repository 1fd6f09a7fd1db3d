import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import toy from "../../../pipelines/toy.ts"
import { servicesLayer } from "../../../src/cli/Services.ts"
import { plan } from "../../../src/engine/Planner.ts"
import type { RunOptions } from "../../../src/engine/Runner.ts"
import { run } from "../../../src/engine/Runner.ts"
import { Lineage } from "../../../src/lineage/Lineage.ts"
import * as Pipeline from "../../../src/Pipeline.ts"
import { resolve } from "../../../src/Pipeline.ts"
import { define, node } from "../../../src/Stage.ts"
import { source } from "../../../stages/source.ts"

const options: RunOptions = {
  preset: "default",
  jobs: 2,
  cpus: 2,
  gpus: [],
  keepGoing: false,
  wait: false,
  overrides: [],
  argv: []
}

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "fp-runner-"))

const runToy = (workspace: string, overrides: ReadonlyArray<string> = []) =>
  Effect.gen(function*() {
    const pipeline = yield* resolve(toy, { overrides })
    return yield* run(pipeline, { ...options, overrides })
  }).pipe(Effect.provide(servicesLayer(workspace)))

/** Many quick stages with synchronous bodies: the run never waits on I/O by itself. */
const quick = define({
  kind: "test/quick",
  version: "1",
  params: Schema.Struct({ index: Schema.Int }),
  outputs: () => ({ "out.txt": "file" }),
  result: Schema.Struct({}),
  run: (ctx) =>
    Effect.sync(() => {
      fs.writeFileSync(ctx.output("out.txt"), String(ctx.params.index))
      return {}
    })
})
const wide = Pipeline.define({
  name: "wide",
  description: "a wide DAG of quick stages",
  presets: { default: "600 independent quick stages" },
  defaultPreset: "default",
  build: () => Array.from({ length: 600 }, (_, index) => node(quick, { id: `q/${index}`, params: { index } }))
})

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe("local executor", () => {
  // The toy pipeline's sum stage runs a child worker, which the engine waits for on the real clock.
  it.live("runs, caches, and records lineage and metrics", () =>
    Effect.gen(function*() {
      const ws = tmp()
      const first = yield* runToy(ws)
      expect(first.executed).toBe(7)
      const second = yield* runToy(ws)
      expect(second.cached).toBe(7)
      const entries = yield* Effect.flatMap(resolve(toy, {}), plan).pipe(Effect.provide(servicesLayer(ws)))
      expect(entries.every((e) => e.status === "fresh")).toBe(true)
      const sumExecution = first.stages.find((s) => s.stage === "sum")!.execution!
      const metrics = yield* Effect.flatMap(Lineage, (l) => l.metricsOf(sumExecution)).pipe(
        Effect.provide(servicesLayer(ws))
      )
      expect(metrics.filter((m) => m.name === "partial_sum")).toHaveLength(98)
    }))

  it.live("on interruption, kills the worker, waits for it, and records the execution as interrupted", () =>
    Effect.gen(function*() {
      const ws = tmp()
      const outcome = yield* Effect.gen(function*() {
        const fiber = yield* Effect.fork(runToy(ws, ["sum.sleepMs=200"]))
        const lineage = yield* Lineage
        let pid: number | null = null
        while (pid === null) {
          yield* Effect.sleep("50 millis")
          pid = (yield* lineage.latestExecutionOfStage("sum"))?.workerPid ?? null
        }
        yield* Fiber.interrupt(fiber)
        const execution = yield* lineage.latestExecutionOfStage("sum")
        const run = yield* lineage.latestRun("toy")
        return { pid, status: execution?.status, runStatus: run?.status }
      }).pipe(Effect.provide(servicesLayer(ws)))
      expect(outcome.status).toBe("interrupted")
      expect(outcome.runStatus).toBe("interrupted")
      expect(alive(outcome.pid)).toBe(false)
      expect(fs.existsSync(path.join(ws, ".lock"))).toBe(false)
    }))
})

describe("sources outside the workspace", () => {
  it.live("hears an interruption from a timer while a wide DAG of synchronous stages runs", () =>
    Effect.gen(function*() {
      // Ctrl-C reaches the runtime as a signal handler, on the event loop like the timer that ends this
      // sleep: the run must let the loop turn between stages, or the interruption waits for all 600 of them.
      const ws = tmp()
      const outcome = yield* Effect.gen(function*() {
        const pipeline = yield* resolve(wide, {})
        const fiber = yield* Effect.fork(run(pipeline, options))
        yield* Effect.sleep("50 millis")
        const exit = yield* Fiber.interrupt(fiber)
        const lineage = yield* Lineage
        const latest = yield* lineage.latestRun("wide")
        return { interrupted: exit._tag === "Failure", status: latest?.status, summary: latest?.summary }
      }).pipe(Effect.provide(servicesLayer(ws)))
      expect(outcome.interrupted).toBe(true)
      expect(outcome.status).toBe("interrupted")
      const executed = (outcome.summary as { executed: number } | undefined)?.executed ?? 0
      expect(executed).toBeLessThan(600)
    }))

  it.effect("brings a file into the store and reruns when the original changes", () =>
    Effect.gen(function*() {
      const ws = tmp()
      const original = path.join(tmp(), "shard.jsonl")
      fs.writeFileSync(original, "{\"text\":\"a\"}\n")
      const pipeline = Pipeline.define({
        name: "sources",
        description: "",
        presets: { default: "" },
        defaultPreset: "default",
        build: () => [node(source, { id: "source/shard", params: { path: original } })]
      })
      const runOnce = Effect.flatMap(resolve(pipeline, {}), (p) => run(p, options)).pipe(
        Effect.provide(servicesLayer(ws))
      )
      expect((yield* runOnce).executed).toBe(1)
      expect((yield* runOnce).cached).toBe(1)
      fs.writeFileSync(original, "{\"text\":\"b\"}\n")
      const entries = yield* Effect.flatMap(resolve(pipeline, {}), plan).pipe(Effect.provide(servicesLayer(ws)))
      expect(entries[0]!.reasons).toContainEqual({ _tag: "SourceChanged", path: original })
    }))
})
