/**
 * The job's side of fencing, run in this process as a batch job would run it: an attempt writes
 * only while the execution's fence names it, waits for the engine to name it, stops its body once a
 * later attempt is named; a resumed attempt sees what the earlier ones recorded.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Duration, Effect, Exit, Fiber, Option, Schedule, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { canonicalJson } from "../../../src/engine/Fingerprint.ts"
import { readAllEvents } from "../../../src/executor/remote/Events.ts"
import type { FenceToken } from "../../../src/executor/remote/Fence.ts"
import { writeFence } from "../../../src/executor/remote/Fence.ts"
import { AttemptSuperseded, stageJob } from "../../../src/executor/remote/JobRunner.ts"
import type { JobSpecInput } from "../../../src/executor/remote/Protocol.ts"
import { recordedTraining } from "../../../src/megatron/train.ts"
import * as Pipeline from "../../../src/Pipeline.ts"
import { resolve } from "../../../src/Pipeline.ts"
import { PipelineRegistry } from "../../../src/pipeline/Registry.ts"
import { define, node } from "../../../src/Stage.ts"

/** Appends a line to its output and reports a metric per step; returns what earlier attempts recorded. */
const steps = define({
  kind: "test/steps",
  version: "1",
  params: Schema.Struct({ steps: Schema.Int, stepMs: Schema.Int }),
  outputs: () => ({ "out.txt": "file" as const }),
  result: Schema.Struct({
    steps: Schema.Number,
    recorded: Schema.Array(Schema.Tuple(Schema.Number, Schema.NullOr(Schema.Number))),
    finalLoss: Schema.NullOr(Schema.Number),
    tokensPerSecond: Schema.Number
  }),
  run: (ctx) =>
    Effect.gen(function*() {
      for (let i = 1; i <= ctx.params.steps; i++) {
        fs.appendFileSync(ctx.output("out.txt"), `${i}\n`)
        yield* ctx.metric("loss", i, 10 - i)
        if (ctx.params.stepMs > 0) yield* Effect.sleep(Duration.millis(ctx.params.stepMs))
      }
      return {
        steps: ctx.params.steps,
        recorded: (ctx.recordedMetric?.("loss") ?? []).map((m) => [m.step, m.value] as const),
        ...recordedTraining(ctx, 3)
      }
    })
})

const definition = Pipeline.define({
  name: "fence-test",
  description: "stages for the job side of fencing",
  presets: { default: "the only one" },
  defaultPreset: "default",
  build: () => [
    node(steps, { id: "quick", params: { steps: 2, stepMs: 0 } }),
    node(steps, { id: "slow", params: { steps: 10_000, stepMs: 20 } })
  ]
})

const registry = PipelineRegistry.fromBundle({ "fence-test": definition })

interface Job {
  readonly dir: string
  readonly specPath: string
  readonly spec: JobSpecInput
  readonly output: string
  readonly events: () => ReadonlyArray<Record<string, unknown>>
  readonly log: () => string
  readonly fence: (token: FenceToken) => void
}

const jobFor = (
  stageId: "quick" | "slow",
  fields: { submission?: number; earlierEvents?: ReadonlyArray<string> } = {}
) =>
  Effect.gen(function*() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fp-stage-job-"))
    const resolved = yield* resolve(definition, {})
    const spec: JobSpecInput = {
      version: 1,
      executionId: "exec-1",
      stageId,
      pipeline: { ref: "fence-test", preset: "default", overrides: [], config: {}, gpus: 0 },
      params: canonicalJson(resolved.byId.get(stageId)!.encodedParams),
      inputs: {},
      workDir: path.join(dir, "staging"),
      logPath: path.join(dir, "stage.log"),
      eventsPath: path.join(dir, "task-0.events.jsonl"),
      resumable: false,
      submission: fields.submission ?? 1,
      cpus: 1,
      fencePath: path.join(dir, "fence.json"),
      earlierEvents: [...(fields.earlierEvents ?? [])]
    }
    const specPath = path.join(dir, "task-0.json")
    fs.writeFileSync(specPath, JSON.stringify(spec))
    fs.writeFileSync(spec.eventsPath, "")
    const job: Job = {
      dir,
      specPath,
      spec,
      output: path.join(spec.workDir, "out.txt"),
      events: () => readAllEvents(spec.eventsPath) as ReadonlyArray<Record<string, unknown>>,
      log: () => (fs.existsSync(spec.logPath) ? fs.readFileSync(spec.logPath, "utf8") : ""),
      fence: (token) => writeFence(spec.fencePath, token)
    }
    return job
  })

const runJob = (job: Job, restart: number, options: { fenceWait?: Duration.DurationInput } = {}) =>
  stageJob(job.specPath, {
    env: { SLURM_RESTART_COUNT: String(restart), SLURM_JOB_ID: "77" },
    fencePoll: Duration.millis(20),
    ...options
  }).pipe(Effect.provide(registry))

const failureOf = (exit: Exit.Exit<unknown, unknown>) =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined

const lines = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, "utf8").split("\n").length - 1 : 0)

const until = (what: string, probe: () => boolean) =>
  Effect.sync(probe).pipe(
    Effect.repeat({ until: (done) => done, schedule: Schedule.spaced(Duration.millis(20)) }),
    Effect.timeoutFail({ duration: Duration.seconds(20), onTimeout: () => new Error(`timed out waiting for ${what}`) })
  )

describe("a batch job's attempt, fenced", () => {
  // Live clock throughout: the job waits for its turn and reads its fence on a schedule, as on a node,
  // and a test clock would stall both.
  it.live("runs while the fence names it, every event stamped with its attempt", () =>
    Effect.gen(function*() {
      const job = yield* jobFor("quick")
      job.fence({ submission: 1, attempt: 0 })
      yield* runJob(job, 0)
      expect(job.events().map((e) => [e.t, e.attempt])).toEqual([
        ["start", 0],
        ["environment", 0],
        ["metric", 0],
        ["metric", 0],
        ["result", 0]
      ])
      expect(fs.readFileSync(job.output, "utf8")).toBe("1\n2\n")
    }))

  it.live("stops its body once the fence names a later attempt, and writes nothing more", () =>
    Effect.gen(function*() {
      const job = yield* jobFor("slow")
      job.fence({ submission: 1, attempt: 0 })
      const fiber = yield* Effect.fork(runJob(job, 0))
      yield* until("a few steps", () => lines(job.output) >= 3)
      // Slurm requeued the job; its next attempt is named.
      job.fence({ submission: 1, attempt: 1 })
      const exit = yield* Fiber.await(fiber)
      const error = failureOf(exit)
      expect(error).toBeInstanceOf(AttemptSuperseded)
      expect((error as AttemptSuperseded).message).toBe(
        "slow: attempt 0 of submission 1 stopped: attempt 1 of submission 1 has replaced it"
      )
      const written = lines(job.output)
      const reported = job.events().length
      yield* Effect.sleep(Duration.millis(300))
      // The body was stopped (the output grows no more) and it reported no result, failure or interruption.
      expect(lines(job.output)).toBe(written)
      expect(written).toBeLessThan(100)
      expect(job.events()).toHaveLength(reported)
      expect(job.events().filter((e) => ["result", "failed", "interrupted"].includes(e.t as string))).toEqual([])
      expect(job.log()).toContain(
        "[slurm] slow: attempt 0 of submission 1 stopped: attempt 1 of submission 1 has replaced it"
      )
    }))

  it.live("a restarted attempt announces itself, then waits until the engine names it before it touches staging", () =>
    Effect.gen(function*() {
      const job = yield* jobFor("quick")
      job.fence({ submission: 1, attempt: 0 })
      fs.mkdirSync(job.spec.workDir, { recursive: true })
      fs.writeFileSync(job.output, "left by attempt 0\n")
      const fiber = yield* Effect.fork(runJob(job, 1))
      yield* until("the start event", () => job.events().length > 0)
      yield* Effect.sleep(Duration.millis(300))
      expect(job.events().map((e) => [e.t, e.attempt])).toEqual([["start", 1]])
      // Not named yet: a stage that cannot resume has not emptied its staging directory.
      expect(fs.readFileSync(job.output, "utf8")).toBe("left by attempt 0\n")
      job.fence({ submission: 1, attempt: 1 })
      const exit = yield* Fiber.await(fiber)
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(fs.readFileSync(job.output, "utf8")).toBe("1\n2\n")
      expect(job.events().at(-1)).toMatchObject({ t: "result", attempt: 1 })
    }))

  it.live("an attempt a later one has already replaced stops at once, leaving staging alone", () =>
    Effect.gen(function*() {
      const job = yield* jobFor("quick")
      // The engine resubmitted the execution: this job's attempts are all stale.
      job.fence({ submission: 2, attempt: 0 })
      fs.mkdirSync(job.spec.workDir, { recursive: true })
      fs.writeFileSync(job.output, "the resubmission's\n")
      const exit = yield* Effect.exit(runJob(job, 1))
      expect(failureOf(exit)).toBeInstanceOf(AttemptSuperseded)
      expect(fs.readFileSync(job.output, "utf8")).toBe("the resubmission's\n")
      expect(job.events()).toEqual([])
    }))

  it.live("gives up, naming the fence, when the engine never names it", () =>
    Effect.gen(function*() {
      const job = yield* jobFor("quick")
      job.fence({ submission: 1, attempt: 0 })
      const exit = yield* Effect.exit(runJob(job, 1, { fenceWait: Duration.millis(300) }))
      expect(failureOf(exit)).toMatchObject({
        _tag: "StageFailed",
        reason: expect.stringContaining(
          `the engine did not name attempt 1 of submission 1 in ${job.spec.fencePath} within 300ms`
        ) as unknown as string
      })
    }))

  it.live("a resumed attempt sees what the earlier attempts recorded, as the engine took it", () =>
    Effect.gen(function*() {
      const earlier = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "fp-stage-job-earlier-")), "events.jsonl")
      const metric = (attempt: number, step: number, value: number) =>
        JSON.stringify({ t: "metric", attempt, name: "loss", step, value })
      const rate = (attempt: number, step: number, value: number) =>
        JSON.stringify({ t: "metric", attempt, name: "tokens_per_s", step, value })
      // The first submission: two attempts of its job, the first still writing after the second began.
      fs.writeFileSync(
        earlier,
        [
          metric(0, 1, 9),
          rate(0, 1, 100),
          JSON.stringify({ t: "start", attempt: 1, host: "n", pid: 1, at: 0 }),
          metric(0, 2, 666),
          metric(1, 2, 8),
          rate(1, 2, 300),
          ""
        ].join("\n")
      )
      const job = yield* jobFor("quick", { submission: 2, earlierEvents: [earlier] })
      // This job's own first attempt saved the final checkpoint, then lost its node before reporting.
      fs.writeFileSync(job.spec.eventsPath, [metric(0, 3, 7), rate(0, 3, 100), ""].join("\n"))
      job.fence({ submission: 2, attempt: 1 })
      yield* runJob(job, 1)
      const reported = job.events().find((e) => e.t === "result")!.value as Record<string, unknown>
      // Its own steps (attempt 1) are not in the history it started from.
      expect(reported.recorded).toEqual([[1, 9], [2, 8], [3, 7]])
      // The loss of the final step; tokens per second over all steps (equal tokens each: the harmonic mean).
      expect(reported.finalLoss).toBe(7)
      expect(reported.tokensPerSecond).toBeCloseTo(3 / (1 / 100 + 1 / 300 + 1 / 100), 9)
    }))
})
