/**
 * The engine against hostile or unlucky input: params that would write outside the workspace, values
 * the worker would refuse only once it starts, and pids a killed run recorded that now belong to
 * someone else.
 */
import { it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import type { ChildProcess } from "node:child_process"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, describe, expect } from "vitest"
import scalingSuite from "../../../pipelines/scaling-suite.ts"
import toy from "../../../pipelines/toy.ts"
import { servicesLayer } from "../../../src/cli/Services.ts"
import type { RunOptions } from "../../../src/engine/Runner.ts"
import { run } from "../../../src/engine/Runner.ts"
import { Lineage } from "../../../src/lineage/Lineage.ts"
import * as Pipeline from "../../../src/Pipeline.ts"
import { resolve } from "../../../src/Pipeline.ts"
import { fromRoot } from "../../../src/ProjectRoot.ts"
import { define, node } from "../../../src/Stage.ts"
import { processIdentity } from "../../../src/worker/processIdentity.ts"
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

const tmp = (prefix = "fp-hardening-") => fs.mkdtempSync(path.join(os.tmpdir(), prefix))

describe("params that become paths", () => {
  it.effect("refuses a tokenize shard name that climbs out of the workspace, before anything runs", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(resolve(scalingSuite, {
        preset: "tiny",
        overrides: ["tokenize/dclm-tiny-0000.name=../../../../../../ESCAPED-shard"]
      }))
      expect(error.message).toContain("stage tokenize/dclm-tiny-0000, param 'name'")
      expect(error.message).toContain("must be a plain file name")
    }))

  it.effect("refuses path components in every name param of the data stages", () =>
    Effect.gen(function*() {
      for (
        const override of [
          "tokenize/dclm-tiny-0000.textKey=../../x",
          "tokenize/dclm-tiny-0000.name=",
          "source/tokenizer.name=..",
          "source/corpus/dclm-tiny-0000.name=a/b"
        ]
      ) {
        const error = yield* Effect.flip(resolve(scalingSuite, { preset: "tiny", overrides: [override] }))
        expect(error._tag, override).toBe("ParamError")
      }
    }))

  it.effect("refuses a declared output name that is not a plain file name", () =>
    Effect.gen(function*() {
      const pipeline = Pipeline.define({
        name: "outputs",
        description: "",
        presets: { default: "" },
        defaultPreset: "default",
        // No name: the output is named after the path's last component, here "..".
        build: () => [node(source, { id: "source/up", params: { path: "/tmp/.." } })]
      })
      expect((yield* Effect.flip(resolve(pipeline, {}))).message).toContain(
        "stage 'source/up' output '..' is not a file name"
      )
    }))

  // The runner's timers and polling need the real clock: it.live, not it.effect's TestClock.
  it.live("a stage body that writes outside its directory through output() fails, and nothing lands outside", () =>
    Effect.gen(function*() {
      const ws = tmp()
      const target = `escaped-${path.basename(ws)}`
      const escaping = define({
        kind: "test/escaping",
        version: "1",
        params: Schema.Struct({}),
        outputs: () => ({ "out.txt": "file" }),
        result: Schema.Struct({}),
        run: (ctx) =>
          Effect.sync(() => {
            fs.writeFileSync(ctx.output("out.txt"), "fine")
            fs.writeFileSync(ctx.output(`../../../../${target}`), "escaped")
            return {}
          })
      })
      const pipeline = Pipeline.define({
        name: "escape",
        description: "",
        presets: { default: "" },
        defaultPreset: "default",
        build: () => [node(escaping, { id: "escape" })]
      })
      const summary = yield* Effect.flatMap(resolve(pipeline, {}), (p) => run(p, options)).pipe(
        Effect.provide(servicesLayer(ws))
      )
      const stage = summary.stages[0]!
      expect(stage.status).toBe("failed")
      expect(stage.error).toContain("stage escape: refusing to write output '../../../../escaped-")
      expect(stage.error).toContain("outside the stage's directory")
      expect(fs.existsSync(path.join(path.dirname(ws), target))).toBe(false)
      expect(fs.existsSync(path.join(ws, target))).toBe(false)
      const recorded = yield* Effect.flatMap(Lineage, (l) => l.latestExecutionOfStage("escape")).pipe(
        Effect.provide(servicesLayer(ws))
      )
      expect(recorded?.status).toBe("failed")
      expect((recorded?.error as { _tag: string } | null)?._tag).toBe("StageFailed")
    }))
})

describe("params the worker would refuse only when it starts", () => {
  const train = "train/flame-moe-38m-tiny"
  const refused = (...overrides: ReadonlyArray<string>) =>
    Effect.map(Effect.flip(resolve(scalingSuite, { preset: "tiny", overrides })), (e) => e.message)

  it.effect("refuses them when the pipeline is resolved, naming the stage and the key", () =>
    Effect.gen(function*() {
      expect(yield* refused(`${train}.model.topK=100`)).toBe(
        `stage ${train}, param 'model.topK': 100 exceeds the 64 experts`
      )
      expect(yield* refused(`${train}.lr=-1`)).toBe(
        `stage ${train}, param 'lr': Expected a non-negative number, actual -1`
      )
      expect(yield* refused(`${train}.warmupFraction=2`)).toBe(
        `stage ${train}, param 'warmupFraction': Expected a number between 0 and 1, actual 2`
      )
      expect(yield* refused(`${train}.data.split=abc`)).toBe(
        `stage ${train}, param 'data.split': expected three non-negative numbers like "90,5,5", got "abc"`
      )
      expect(yield* refused(`${train}.minLr=0.5`)).toBe(`stage ${train}, param 'minLr': 0.5 exceeds lr 0.003`)
    }))

  it.effect("checks the rules the worker and Megatron-LM apply across keys", () =>
    Effect.gen(function*() {
      expect(yield* refused(`${train}.globalBatchSize=12`)).toContain(
        "param 'globalBatchSize': 12 is not a multiple of"
      )
      expect(yield* refused(`${train}.model.moeLayers=[0]*1+[1]*20`)).toContain("param 'model.moeLayers'")
      expect(yield* refused(`${train}.model.moeLayers="2"`)).toContain("write the pattern as a list")
      expect(yield* refused(`${train}.model.numAttentionHeads=7`)).toContain("param 'model.hiddenSize'")
      expect(yield* refused(`${train}.data.split=90,5`)).toContain("param 'data.split'")
      expect(yield* refused(`${train}.data.seed=-1`)).toContain("param 'data.seed'")
      expect(yield* refused(`${train}.backend=megatron`)).toContain(
        "param 'megatron': Megatron-LM would refuse the layout"
      )
      expect(yield* refused("eval/flame-moe-38m-tiny/2.model.topK=65")).toContain(
        "stage eval/flame-moe-38m-tiny/2, param 'model.topK': 65 exceeds the 64 experts"
      )
    }))

  it.effect("still takes every value the presets use", () =>
    Effect.gen(function*() {
      // The full preset's data settings point at the bundled fixtures: only its params matter here.
      const config = {
        corpus: fromRoot("fixtures", "corpus"),
        tokenizer: fromRoot("fixtures", "tokenizer", "tokenizer.json"),
        tasks: fromRoot("fixtures", "eval")
      }
      // The full preset's preflight asks for GPUs and real data; what is checked here is the params.
      const { preflight: _preflight, ...withoutPreflight } = scalingSuite
      for (const preset of ["tiny", "full"]) {
        for (const gpus of [0, 8]) {
          const resolved = yield* resolve(withoutPreflight, { preset, config, executor: { gpus } })
          expect(resolved.stages.length).toBeGreaterThan(100)
        }
      }
    }))
})

describe("pids a killed run recorded", () => {
  const started: Array<ChildProcess> = []
  afterEach(() => {
    for (const child of started.splice(0)) child.kill("SIGKILL")
  })

  const exited = (child: ChildProcess) =>
    child.exitCode !== null || child.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((done) => child.once("exit", () => done()))

  /** A live process leading its own group, as a worker does, but none of ours: what a reused pid may be. */
  const liveProcess = () => {
    const child = spawn("sleep", ["60"], { detached: true, stdio: "ignore" })
    started.push(child)
    return child
  }

  /** Leaves what a run killed with SIGKILL leaves: a `running` execution with a worker pid. */
  const abandonedExecution = (ws: string, pid: number, identity: string | null) =>
    Effect.gen(function*() {
      const lineage = yield* Lineage
      yield* lineage.startRun({
        id: "killed-run",
        pipeline: "toy",
        preset: "default",
        overrides: {},
        argv: [],
        executor: "local",
        host: os.hostname(),
        pid: 4194305,
        status: "running",
        startedAt: Date.now() - 1000
      })
      yield* lineage.startExecution({
        id: "killed-execution",
        runId: "killed-run",
        stageId: "sum",
        fingerprint: "f".repeat(64),
        version: "1",
        params: {},
        inputHashes: {},
        status: "running",
        startedAt: Date.now() - 1000,
        host: os.hostname(),
        executor: "local",
        logPath: "logs/sum/killed-execution.log",
        outputDir: "artifacts/sum/x"
      }, [])
      yield* lineage.setWorkerPid("killed-execution", pid, identity)
    }).pipe(Effect.provide(servicesLayer(ws)))

  const runToy = (ws: string) =>
    Effect.flatMap(resolve(toy, {}), (p) => run(p, options)).pipe(Effect.provide(servicesLayer(ws)))

  /** Time for a wrongly sent signal to land before the test looks. */
  const settle = Effect.sleep("100 millis")

  // These run the real runner and real processes: it.live keeps the real clock.

  it.live("never kills a live process that now has the recorded pid but another identity", () =>
    Effect.gen(function*() {
      const ws = tmp()
      const stranger = liveProcess()
      yield* abandonedExecution(ws, stranger.pid!, "a0000000-0000-0000-0000-000000000000:1")
      const summary = yield* runToy(ws)
      expect(summary.status).toBe("succeeded")
      yield* settle
      expect(stranger.exitCode).toBeNull()
      expect(stranger.signalCode).toBeNull()
      expect(() => process.kill(stranger.pid!, 0)).not.toThrow()
    }))

  it.live("leaves a pid recorded without an identity alone", () =>
    Effect.gen(function*() {
      const ws = tmp()
      const unknown = liveProcess()
      yield* abandonedExecution(ws, unknown.pid!, null)
      yield* runToy(ws)
      yield* settle
      expect(unknown.signalCode).toBeNull()
    }))

  it.live("kills the orphaned group when the pid is still the recorded process", () =>
    Effect.gen(function*() {
      const ws = tmp()
      const orphan = liveProcess()
      yield* abandonedExecution(ws, orphan.pid!, processIdentity(orphan.pid!)!)
      yield* runToy(ws)
      yield* Effect.promise(() => exited(orphan))
      expect(orphan.signalCode).toBe("SIGKILL")
    }))

  it.live("records the identity of each worker it starts", () =>
    Effect.gen(function*() {
      const ws = tmp()
      yield* runToy(ws)
      const execution = yield* Effect.flatMap(Lineage, (l) => l.latestExecutionOfStage("sum")).pipe(
        Effect.provide(servicesLayer(ws))
      )
      expect(execution?.workerPid).toBeGreaterThan(0)
      expect(execution?.workerIdentity).toMatch(/^[0-9a-f-]{36}:\d+$/)
      expect(execution?.workerIdentity?.split(":")[0]).toBe(processIdentity(process.pid)!.split(":")[0])
    }))
})
