/**
 * Lineage facts as a stage input: the engine reads them where the database is and writes them into the
 * staging directory, the body only reads that file. Run by the engine, re-executed by an audit and run
 * again as a requeued batch job, the body sees the facts of the executions that produced exactly the
 * artifacts it consumes; the report stage builds from them with no lineage database in reach.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer, Option, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { audit } from "../../../src/audit/Audit.ts"
import { lineageLayer, servicesLayer } from "../../../src/cli/Services.ts"
import { StageFailed } from "../../../src/domain/Errors.ts"
import { canonicalJson } from "../../../src/engine/Fingerprint.ts"
import { plan } from "../../../src/engine/Planner.ts"
import { Reporter } from "../../../src/engine/Reporter.ts"
import type { RunOptions } from "../../../src/engine/Runner.ts"
import { run } from "../../../src/engine/Runner.ts"
import { provideLineageFacts, runStageBody, stageContext } from "../../../src/engine/StageRun.ts"
import { readAllEvents } from "../../../src/executor/remote/Events.ts"
import { writeFence } from "../../../src/executor/remote/Fence.ts"
import { stageJob } from "../../../src/executor/remote/JobRunner.ts"
import type { JobSpecInput } from "../../../src/executor/remote/Protocol.ts"
import type { ExecutionRow } from "../../../src/lineage/Lineage.ts"
import { Lineage } from "../../../src/lineage/Lineage.ts"
import type { LineageFacts } from "../../../src/lineage/reportFacts.ts"
import { LINEAGE_FACTS_FILE, readLineageFacts, writeLineageFacts } from "../../../src/lineage/reportFacts.ts"
import * as Pipeline from "../../../src/Pipeline.ts"
import { resolve } from "../../../src/Pipeline.ts"
import { PipelineRegistry } from "../../../src/pipeline/Registry.ts"
import { define, node, ref } from "../../../src/Stage.ts"
import { ContentHasher } from "../../../src/store/ContentHasher.ts"
import { report } from "../../../stages/analysis/report.ts"

const tmp = (prefix: string) => fs.mkdtempSync(path.join(os.tmpdir(), prefix))

/** Reports a loss curve and writes its value. */
const upstream = define({
  kind: "test/facts-upstream",
  version: "1",
  params: Schema.Struct({ value: Schema.Int }),
  outputs: () => ({ "value.json": "file" as const }),
  result: Schema.Struct({}),
  run: (ctx) =>
    Effect.gen(function*() {
      for (const step of [1, 2, 3]) yield* ctx.metric("loss", step, ctx.params.value / step)
      fs.writeFileSync(ctx.output("value.json"), JSON.stringify({ value: ctx.params.value }))
      return {}
    })
})

/** Writes down what it was told of its inputs' producers; it has no way to reach lineage itself. */
const reader = define({
  kind: "test/facts-reader",
  version: "1",
  params: Schema.Struct({}),
  outputs: () => ({ "seen.json": "file" as const }),
  result: Schema.Struct({ producers: Schema.Number }),
  lineageFacts: (_params, inputs) => Object.fromEntries(inputs.map((input) => [input, ["loss"]])),
  run: (ctx) =>
    Effect.map(readLineageFacts(ctx), (facts) => {
      const seen = Object.fromEntries(
        Object.entries(facts.producers).map(([input, producer]) => {
          const fact = facts.executions[producer.executionId]!
          return [input, {
            ...producer,
            params: fact.execution.params,
            loss: fact.metrics.loss,
            outputs: fact.outputs.map((o) => o.path)
          }]
        })
      )
      fs.writeFileSync(ctx.output("seen.json"), canonicalJson({ workspace: facts.workspace, seen }))
      return { producers: Object.keys(seen).length }
    })
})

const { lineageFacts: _, ...withoutFacts } = reader

const factsPipeline = (withFacts = true) =>
  Pipeline.define({
    name: "facts-test",
    description: "a stage that reads the lineage facts of its inputs",
    presets: { default: "the only one" },
    defaultPreset: "default",
    build: () => [
      node(upstream, { id: "a", params: { value: 6 } }),
      node(upstream, { id: "b", params: { value: 9 } }),
      node(withFacts ? reader : withoutFacts, {
        id: "reader",
        inputs: { first: ref("a", "value.json"), second: ref("b", "value.json") }
      })
    ]
  })

const runOptions: RunOptions = {
  preset: "default",
  jobs: 1,
  cpus: 1,
  gpus: [],
  keepGoing: false,
  wait: false,
  overrides: [],
  argv: [],
  recorded: { pipeline: "facts-test", config: {}, executorGpus: 0 }
}

const runPipeline = (ws: string) =>
  Effect.flatMap(resolve(factsPipeline(), {}), (p) => run(p, runOptions)).pipe(Effect.provide(servicesLayer(ws)))

const latest = (ws: string, stage: string) =>
  Effect.flatMap(Lineage, (l) => l.latestExecutionOfStage(stage)).pipe(
    Effect.provide(lineageLayer(ws))
  ) as Effect.Effect<ExecutionRow, unknown>

const failureOf = (exit: Exit.Exit<unknown, unknown>) =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined

describe("lineage facts prepared by the engine", () => {
  it.effect("hands the body the facts of its inputs' producers, params, metrics and outputs, as a file", () =>
    Effect.gen(function*() {
      const ws = tmp("fp-facts-run-")
      const summary = yield* runPipeline(ws)
      expect(summary.executed).toBe(3)
      const [a, b, readerRun] = [yield* latest(ws, "a"), yield* latest(ws, "b"), yield* latest(ws, "reader")]
      const out = path.join(ws, readerRun.outputDir)
      const seen = JSON.parse(fs.readFileSync(path.join(out, "seen.json"), "utf8"))
      expect(seen).toEqual({
        workspace: ws,
        seen: {
          first: {
            executionId: a.id,
            stageId: "a",
            params: { value: 6 },
            loss: [[1, 6], [2, 3], [3, 2]],
            outputs: [`${a.outputDir}/value.json`]
          },
          second: {
            executionId: b.id,
            stageId: "b",
            params: { value: 9 },
            loss: [[1, 9], [2, 4.5], [3, 3]],
            outputs: [`${b.outputDir}/value.json`]
          }
        }
      })
      // The facts stay beside the outputs: what the stage was made from.
      expect(fs.existsSync(path.join(out, LINEAGE_FACTS_FILE))).toBe(true)
      fs.rmSync(ws, { recursive: true, force: true })
    }))

  it.effect("leaves fingerprints alone: asking for facts does not make a stage stale", () =>
    Effect.gen(function*() {
      const ws = tmp("fp-facts-fp-")
      yield* runPipeline(ws)
      const fingerprints = (withFacts: boolean) =>
        Effect.flatMap(resolve(factsPipeline(withFacts), {}), plan).pipe(Effect.provide(servicesLayer(ws)))
      const [asking, notAsking] = [yield* fingerprints(true), yield* fingerprints(false)]
      expect(asking.every((e) => e.status === "fresh")).toBe(true)
      expect(asking.map((e) => e.fingerprint)).toEqual(notAsking.map((e) => e.fingerprint))
      fs.rmSync(ws, { recursive: true, force: true })
    }))

  it.effect("an audit re-executes the stage with the same facts, and it reproduces bit for bit", () =>
    Effect.gen(function*() {
      const ws = tmp("fp-facts-audit-")
      yield* runPipeline(ws)
      const result = yield* audit({
        target: "facts-test",
        preset: undefined,
        overrides: [],
        config: {},
        gpus: [],
        quick: true,
        stages: ["reader"],
        sample: 0,
        seed: 1,
        all: false,
        restore: false,
        wait: false,
        scratch: undefined,
        keepScratch: false
      }).pipe(
        Effect.provide(Layer.mergeAll(
          Layer.provideMerge(ContentHasher.Default, lineageLayer(ws)),
          Reporter.silent,
          PipelineRegistry.fromBundle({ "facts-test": factsPipeline() })
        ))
      )
      const reexecuted = result.reexecution.results.find((r) => r.stage === "reader")
      expect(reexecuted, JSON.stringify(result.reexecution.results)).toMatchObject({ status: "reproduced" })
      fs.rmSync(ws, { recursive: true, force: true })
    }))
})

describe("looking up the facts", () => {
  const lineageRows = Effect.gen(function*() {
    const lineage = yield* Lineage
    yield* lineage.startRun({
      id: "r1",
      pipeline: "p",
      preset: null,
      overrides: {},
      argv: [],
      executor: "local",
      host: "h",
      pid: 1,
      status: "running",
      startedAt: 1
    })
    // Two executions of the same stage wrote the same path: the older one's artifact is collected.
    for (const [id, createdAt, collectedAt] of [["e-old", 1, 5], ["e-new", 6, null]] as const) {
      yield* lineage.startExecution({
        id,
        runId: "r1",
        stageId: "train",
        fingerprint: "f",
        version: "1",
        params: { id },
        inputHashes: {},
        status: "running",
        startedAt: createdAt,
        host: "h",
        executor: "local",
        logPath: "l",
        outputDir: "o"
      }, [])
      yield* lineage.finishExecution(id, {
        status: "succeeded",
        durationMs: 1,
        artifacts: [{
          id: `a-${id}`,
          executionId: id,
          name: "out",
          path: "artifacts/train/out",
          kind: "file",
          hash: "h",
          size: 1,
          createdAt,
          collectedAt
        }]
      })
    }
    yield* lineage.appendMetrics([{ executionId: "e-old", name: "loss", step: 1, value: 2 }])
    return lineage
  })

  it.effect("finds the producer by the artifact consumed, not by its path, and leaves out an unknown artifact", () =>
    Effect.gen(function*() {
      const found = yield* Effect.flatMap(lineageRows, (lineage) =>
        lineage.inputFacts([
          { input: "ckpt", artifactId: "a-e-old", metrics: ["loss"] },
          { input: "gone", artifactId: "a-nowhere", metrics: [] }
        ])).pipe(Effect.provide(Lineage.Test), Effect.scoped)
      expect(found.producers).toEqual({ ckpt: { executionId: "e-old", stageId: "train" } })
      expect(Object.keys(found.executions)).toEqual(["e-old"])
      expect(found.executions["e-old"]!.metrics).toEqual({ loss: [[1, 2]] })
    }))

  const provide = (artifacts: Readonly<Record<string, string>>) =>
    Effect.flatMap(
      lineageRows,
      (lineage) =>
        Effect.exit(provideLineageFacts(lineage, { id: "reader", definition: reader, params: {} }, {
          artifacts,
          workspace: "/ws",
          workDir: tmp("fp-facts-provide-")
        }))
    ).pipe(Effect.provide(Lineage.Test), Effect.scoped)

  it.effect("fails the stage, naming it and the input, when an input's artifact is not in lineage", () =>
    Effect.gen(function*() {
      const failure = failureOf(yield* provide({ first: "a-e-new", second: "a-nowhere" }))
      expect(failure).toBeInstanceOf(StageFailed)
      expect((failure as StageFailed).message).toBe("stage reader: input second: artifact a-nowhere is not in lineage")
    }))

  it.effect("fails the stage when it asks about an input it does not consume", () =>
    Effect.gen(function*() {
      const asking = define({ ...reader, lineageFacts: () => ({ elsewhere: [] }) })
      const exit = yield* Effect.flatMap(
        lineageRows,
        (lineage) =>
          Effect.exit(provideLineageFacts(lineage, { id: "reader", definition: asking, params: {} }, {
            artifacts: { first: "a-e-new" },
            workspace: "/ws",
            workDir: tmp("fp-facts-provide-")
          }))
      ).pipe(Effect.provide(Lineage.Test), Effect.scoped)
      expect((failureOf(exit) as StageFailed).message).toContain("elsewhere, which is not one of its inputs")
    }))
})

describe("the facts' file", () => {
  it.effect("a missing or damaged file fails the stage, naming the file", () =>
    Effect.gen(function*() {
      const workDir = tmp("fp-facts-read-")
      const file = path.join(workDir, LINEAGE_FACTS_FILE)
      const missing = failureOf(yield* Effect.exit(readLineageFacts({ stageId: "r", workDir })))
      expect((missing as StageFailed).message).toContain(
        `stage r: cannot read the lineage facts the engine prepared (${file})`
      )
      fs.writeFileSync(file, JSON.stringify({ workspace: "/ws", producers: { x: { stageId: "s" } }, executions: {} }))
      const damaged = failureOf(yield* Effect.exit(readLineageFacts({ stageId: "r", workDir })))
      expect((damaged as StageFailed).message).toContain(`stage r: lineage facts ${file}`)
      expect((damaged as StageFailed).message).toContain("executionId")
    }))
})

/** Facts for the report of one execution of stage `other` that wrote `data.bin` in `workspace`. */
const otherFacts = (workspace: string): LineageFacts => ({
  workspace,
  producers: { other: { executionId: "e-other", stageId: "other" } },
  executions: {
    "e-other": {
      execution: {
        id: "e-other",
        runId: "r1",
        stageId: "other",
        fingerprint: "f",
        version: "1",
        params: { n: 1 },
        inputHashes: {},
        workerHash: null,
        sourceHashes: {},
        status: "succeeded",
        startedAt: 1,
        endedAt: 2,
        durationMs: 1,
        exitCode: 0,
        host: "h",
        executor: "slurm",
        workerPid: null,
        workerIdentity: null,
        logPath: "l",
        outputDir: "artifacts/other/f",
        result: null,
        error: null,
        environmentId: null,
        resumedFrom: null,
        seededFrom: null,
        seededStep: null
      },
      environment: null,
      outputs: [{
        id: "a-other",
        executionId: "e-other",
        name: "data.bin",
        path: "artifacts/other/f/data.bin",
        kind: "file",
        hash: "h",
        size: 1,
        createdAt: 2,
        collectedAt: null
      }],
      inputs: [],
      metrics: {}
    }
  }
})

describe("the report stage", () => {
  // Nothing above these directories holds a lineage database: the body has only the file.
  const reportAttempt = (facts: LineageFacts | undefined, inputs: Readonly<Record<string, string>>) => {
    const workDir = tmp("fp-facts-report-")
    if (facts !== undefined) writeLineageFacts(workDir, facts)
    const stage = {
      id: "report",
      definition: report,
      params: { title: "t", pipeline: "p", preset: null, kinds: { other: "test/other" } }
    }
    const ctx = stageContext(stage, { inputs, workDir, logPath: path.join(workDir, "log"), gpus: [], cpus: 1 }, {
      progress: () => Effect.void,
      metric: () => Effect.void,
      workerStarted: () => Effect.void
    })
    return Effect.map(Effect.exit(runStageBody(stage, ctx)), (exit) => ({ workDir, exit }))
  }

  it.effect("builds from the facts it is handed, naming the producer's execution", () =>
    Effect.gen(function*() {
      const workspace = tmp("fp-facts-report-ws-")
      const input = path.join(workspace, "artifacts/other/f/data.bin")
      const { exit, workDir } = yield* reportAttempt(otherFacts(workspace), { other: input })
      expect(Exit.isSuccess(exit) ? exit.value : failureOf(exit)).toMatchObject({ executions: 1 })
      expect(fs.readFileSync(path.join(workDir, "report.html"), "utf8")).toContain("e-other")
    }))

  it.effect("fails, naming the input, when the facts do not name its producer", () =>
    Effect.gen(function*() {
      const workspace = tmp("fp-facts-report-ws-")
      const { exit } = yield* reportAttempt({ ...otherFacts(workspace), producers: {} }, { other: "/x" })
      expect((failureOf(exit) as StageFailed).message).toBe(
        "stage report: input other: the lineage facts do not name its producer"
      )
    }))

  it("asks the engine for the training curves of a training input and nothing of the others", () => {
    const asked = report.lineageFacts!({ title: "t", pipeline: "p", preset: null, kinds: { "train/s": "train" } }, [
      "train/s",
      "tokenizer"
    ])
    expect(asked["train/s"]).toContain("loss")
    expect(asked).toEqual({ "train/s": expect.any(Array), tokenizer: [] })
  })
})

describe("a requeued batch job", () => {
  it.effect("starts its staging afresh but keeps the lineage facts the engine wrote", () =>
    Effect.gen(function*() {
      const dir = tmp("fp-facts-job-")
      const pipeline = factsPipeline()
      const resolved = yield* resolve(pipeline, {})
      const workDir = path.join(dir, "staging")
      fs.mkdirSync(workDir)
      fs.writeFileSync(path.join(workDir, "left-by-attempt-0.txt"), "")
      writeLineageFacts(workDir, {
        workspace: dir,
        producers: {
          first: { executionId: "e-other", stageId: "other" },
          second: { executionId: "e-other", stageId: "other" }
        },
        executions: otherFacts(dir).executions
      })
      const spec: JobSpecInput = {
        version: 1,
        executionId: "exec-1",
        stageId: "reader",
        pipeline: { ref: "facts-test", preset: "default", overrides: [], config: {}, gpus: 0 },
        params: canonicalJson(resolved.byId.get("reader")!.encodedParams),
        inputs: { first: path.join(dir, "first.json"), second: path.join(dir, "second.json") },
        workDir,
        logPath: path.join(dir, "stage.log"),
        eventsPath: path.join(dir, "events.jsonl"),
        resumable: false,
        submission: 1,
        cpus: 1,
        fencePath: path.join(dir, "fence.json"),
        earlierEvents: []
      }
      const specPath = path.join(dir, "spec.json")
      fs.writeFileSync(specPath, JSON.stringify(spec))
      fs.writeFileSync(spec.eventsPath, "")
      writeFence(spec.fencePath, { submission: 1, attempt: 1 })
      yield* stageJob(specPath, { env: { SLURM_RESTART_COUNT: "1", SLURM_JOB_ID: "7" } }).pipe(
        Effect.provide(PipelineRegistry.fromBundle({ "facts-test": pipeline }))
      )
      const events = readAllEvents(spec.eventsPath)
      expect(events.at(-1)).toMatchObject({ t: "result", value: { producers: 2 } })
      expect(fs.existsSync(path.join(workDir, "left-by-attempt-0.txt"))).toBe(false)
      fs.rmSync(dir, { recursive: true, force: true })
    }))
})
