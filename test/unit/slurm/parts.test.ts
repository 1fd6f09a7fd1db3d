/**
 * The Slurm executor's parts on their own: how Submission groups what arrived together into jobs, and
 * how Cancel gathers scancel calls and gives up on a job that does not end (on the real clock: it
 * sleeps and times out). The executor as a whole, against a scripted cluster, is in executor.test.ts.
 */
import { it } from "@effect/vitest"
import { Deferred, Effect, Either, Fiber, FiberId, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect } from "vitest"
import toy from "../../../pipelines/toy.ts"
import type { StageFailed } from "../../../src/domain/Errors.ts"
import type { SlurmSettings } from "../../../src/domain/Slurm.ts"
import { Reporter } from "../../../src/engine/Reporter.ts"
import type { ExecutionRequest } from "../../../src/executor/Executor.ts"
import { attemptFilter, newCursor } from "../../../src/executor/remote/Events.ts"
import { Lineage } from "../../../src/lineage/Lineage.ts"
import type { ResolvedPipeline } from "../../../src/Pipeline.ts"
import { resolve } from "../../../src/Pipeline.ts"
import { cancelAndWait, flushCancels, requestCancel } from "../../../src/slurm/Cancel.ts"
import { SlurmCommandFailed } from "../../../src/slurm/errors.ts"
import { slurmSettingsFromConfig } from "../../../src/slurm/Settings.ts"
import { SlurmClient } from "../../../src/slurm/SlurmClient.ts"
import type { Outcome, Pending, SlurmRun, Tracked } from "../../../src/slurm/SlurmRun.ts"
import { makeSlurmRun } from "../../../src/slurm/SlurmRun.ts"
import { groupIntoJobs } from "../../../src/slurm/Submission.ts"
import type { StageContext } from "../../../src/Stage.ts"
import { Workspace } from "../../../src/workspace/Workspace.ts"

const settings = (config: Record<string, string> = {}): SlurmSettings =>
  Either.getOrThrow(slurmSettingsFromConfig({ "slurm.gpusPerNode": "0", ...config }))

let executions = 0

/** A request for a stage of the resolved pipeline: grouping and cancelling look at nothing else. */
const requestFor = (pipeline: ResolvedPipeline, stageId: string): ExecutionRequest => {
  const n = ++executions
  return {
    stage: pipeline.byId.get(stageId)!,
    ctx: {} as StageContext<unknown>,
    executionId: `exec-${n}`,
    fingerprint: `fp-${n}`
  }
}

const pendingFor = (pipeline: ResolvedPipeline, stageId: string): Pending => ({
  request: requestFor(pipeline, stageId),
  submission: 1,
  earlierEvents: [],
  cancelled: false,
  current: undefined,
  tracked: Deferred.unsafeMake<Tracked, StageFailed>(FiberId.none)
})

/** Each job as the stage ids of its tasks. */
const stagesOf = (groups: ReadonlyArray<ReadonlyArray<Pending>>) =>
  groups.map((group) => group.map((p) => p.request.stage.id))

describe("grouping what arrived together into jobs", () => {
  it.effect("stages of one kind, resources and settings share a job; the others go alone", () =>
    Effect.gen(function*() {
      const pipeline = yield* resolve(toy, {})
      const batch = ["square/0", "generate", "square/1", "square/2"].map((id) => pendingFor(pipeline, id))
      expect(stagesOf(groupIntoJobs(settings(), batch))).toEqual([["square/0", "square/1", "square/2"], ["generate"]])
    }))

  it.effect("with arrays off, or a stage rule that says no, a stage goes alone", () =>
    Effect.gen(function*() {
      const pipeline = yield* resolve(toy, {})
      const batch = () => ["square/0", "square/1", "square/2"].map((id) => pendingFor(pipeline, id))
      expect(stagesOf(groupIntoJobs(settings({ "slurm.arrays": "false" }), batch()))).toEqual([
        ["square/0"],
        ["square/1"],
        ["square/2"]
      ])
      expect(stagesOf(groupIntoJobs(settings({ "slurm.stage.square/1.array": "false" }), batch()))).toEqual([
        ["square/0", "square/2"],
        ["square/1"]
      ])
    }))

  it.effect("stages whose Slurm settings differ do not share a job", () =>
    Effect.gen(function*() {
      const pipeline = yield* resolve(toy, {})
      const batch = ["square/0", "square/1", "square/2"].map((id) => pendingFor(pipeline, id))
      const groups = groupIntoJobs(settings({ "slurm.stage.square/2.partition": "big" }), batch)
      expect(stagesOf(groups)).toEqual([["square/0", "square/1"], ["square/2"]])
    }))

  it.effect("stages beyond arrayMax fill further arrays: 5 stages at arrayMax 2 are jobs of 2, 2 and 1", () =>
    Effect.gen(function*() {
      const pipeline = yield* resolve(toy, {})
      const batch = Array.from({ length: 5 }, () => pendingFor(pipeline, "square/0"))
      const groups = groupIntoJobs(settings({ "slurm.arrayMax": "2" }), batch)
      expect(groups[0]!.map((p) => p.request.executionId)).toEqual(batch.slice(0, 2).map((p) => p.request.executionId))
      expect(groups.map((g) => g.length)).toEqual([2, 2, 1])
      expect(groups.flat().map((p) => p.request.executionId)).toEqual(batch.map((p) => p.request.executionId))
    }))
})

/** A scancel that records its calls, failing with `refuse` when given; nothing else is asked. */
const scancel = (calls: Array<ReadonlyArray<string>>, refuse?: string) =>
  SlurmClient.make({
    submit: () => Effect.die("not submitted here"),
    queue: () => Effect.die("not polled here"),
    show: () => Effect.die("not asked here"),
    accounting: () => Effect.die("not asked here"),
    cancel: (ids: ReadonlyArray<string>) =>
      Effect.suspend(() => {
        calls.push([...ids])
        return refuse === undefined ?
          Effect.void :
          Effect.fail(new SlurmCommandFailed({ command: `scancel ${ids.join(" ")}`, exitCode: 1, stderr: refuse }))
      }),
    gpusPerNode: () => Effect.succeed(0),
    check: Effect.void
  })

const withRun = <A, E>(
  options: { readonly config?: Record<string, string>; readonly refuse?: string },
  body: (
    run: SlurmRun,
    seen: { readonly calls: Array<ReadonlyArray<string>>; readonly info: Array<string> }
  ) => Effect.Effect<A, E, Lineage>
) => {
  const calls: Array<ReadonlyArray<string>> = []
  const info: Array<string> = []
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "fp-slurm-parts-"))
  const layer = Layer.mergeAll(
    Lineage.Test,
    Layer.succeed(SlurmClient, scancel(calls, options.refuse)),
    Layer.succeed(Reporter, {
      started: () => {},
      progress: () => {},
      finished: () => {},
      info: (line) => void info.push(line),
      close: () => {}
    }),
    Layer.sync(Workspace, () => ({
      root,
      database: path.join(root, "lineage.sqlite"),
      artifacts: path.join(root, "artifacts"),
      staging: path.join(root, "staging"),
      logs: path.join(root, "logs"),
      trash: path.join(root, ".trash"),
      lock: path.join(root, ".lock")
    }))
  )
  return Effect.gen(function*() {
    const run = yield* makeSlurmRun({
      pipeline: "toy",
      preset: "default",
      overrides: [],
      config: {},
      settings: settings(options.config),
      gpusPerNode: 0,
      jobCommand: ["node", "flame-pipe.js", "job", "toy"]
    })
    return yield* body(run, { calls, info })
  }).pipe(Effect.provide(layer))
}

/** A job as the submitter leaves it, of a stage of the toy pipeline. */
const trackedJob = (pipeline: ResolvedPipeline, stageId: string, jobId: string) =>
  Effect.map(Deferred.make<Outcome>(), (done): Tracked => ({
    request: requestFor(pipeline, stageId),
    jobId,
    submission: 1,
    eventsPath: "events.jsonl",
    fencePath: "fence.json",
    slurmOutput: "slurm.out",
    cursor: newCursor(),
    attempts: attemptFilter(),
    state: "RUNNING",
    running: true,
    startedSinceRequeue: true,
    restarts: 0,
    result: undefined,
    failure: undefined,
    cancelling: false,
    finished: false,
    unseenPolls: 0,
    done
  }))

/** The lineage rows a job's record hangs off: a run and the job's execution. */
const startExecution = (lineage: Lineage, t: Tracked) =>
  Effect.orDie(Effect.gen(function*() {
    yield* lineage.startRun({
      id: "run-1",
      pipeline: "toy",
      preset: "default",
      overrides: {},
      argv: [],
      executor: "slurm",
      host: "h",
      pid: 1,
      status: "running",
      startedAt: Date.now()
    })
    yield* lineage.startExecution({
      id: t.request.executionId,
      runId: "run-1",
      stageId: t.request.stage.id,
      fingerprint: t.request.fingerprint,
      version: "1",
      params: {},
      inputHashes: {},
      status: "running",
      startedAt: Date.now(),
      host: "h",
      executor: "slurm",
      logPath: "log",
      outputDir: "out"
    }, [])
  }))

describe("cancelling", () => {
  it.live("cancellations requested before a flush go to one scancel; a flush with none asks nothing", () =>
    withRun({}, (run, { calls }) =>
      Effect.gen(function*() {
        const pipeline = yield* resolve(toy, {})
        const a = yield* trackedJob(pipeline, "square/0", "101")
        const b = yield* trackedJob(pipeline, "square/1", "102")
        yield* requestCancel(run, a)
        yield* requestCancel(run, b)
        expect(calls).toEqual([])
        expect(a.cancelling && b.cancelling).toBe(true)
        yield* flushCancels(run)
        yield* flushCancels(run)
        expect(calls).toEqual([["101", "102"]])
      })))

  it.live("a scancel that fails is reported once, and does not fail what flushed it", () =>
    withRun(
      { refuse: "slurm_kill_job error: Access/permission denied" },
      (run, { calls, info }) =>
        Effect.gen(function*() {
          const pipeline = yield* resolve(toy, {})
          const a = yield* trackedJob(pipeline, "square/0", "101")
          yield* requestCancel(run, a)
          yield* flushCancels(run)
          yield* requestCancel(run, a)
          yield* flushCancels(run)
          expect(calls).toEqual([["101"], ["101"]])
          expect(info).toHaveLength(1)
          expect(info[0]).toMatch(/^slurm: .*scancel 101.*Access\/permission denied/)
        })
    ))

  it.live(
    "waits for the cancelled job to end, and a job that already finished is not cancelled",
    () =>
      withRun({}, (run, { calls }) =>
        Effect.gen(function*() {
          const pipeline = yield* resolve(toy, {})
          const finished = yield* trackedJob(pipeline, "square/0", "101")
          finished.finished = true
          yield* cancelAndWait(run, finished)
          expect(calls).toEqual([])

          const running = yield* trackedJob(pipeline, "square/1", "102")
          const waiting = yield* Effect.fork(cancelAndWait(run, running))
          while (calls.length === 0) yield* Effect.sleep("5 millis")
          expect(calls).toEqual([["102"]])
          expect(waiting.unsafePoll()).toBeNull()
          yield* Deferred.succeed(running.done, { _tag: "Succeeded", value: null })
          yield* Fiber.join(waiting)
        })),
    { timeout: 10_000 }
  )

  it.live(
    "gives up on a job that has not ended after cancelTimeout, saying so and recording it",
    () =>
      withRun({ config: { "slurm.cancelTimeout": "0.1" } }, (run, { calls, info }) =>
        Effect.gen(function*() {
          const pipeline = yield* resolve(toy, {})
          const lineage = yield* Lineage
          const t = yield* trackedJob(pipeline, "square/0", "101")
          yield* startExecution(lineage, t)
          yield* run.records.record({
            executionId: t.request.executionId,
            jobId: t.jobId,
            submission: 1,
            script: "job.sh",
            partition: null,
            state: "RUNNING",
            submittedAt: Date.now()
          }).pipe(Effect.orDie)
          yield* cancelAndWait(run, t)
          expect(calls).toEqual([["101"]])
          expect(info).toEqual(["slurm: job 101 (square/0) was cancelled but had not ended after 0.1s"])
          const rows = yield* Effect.orDie(run.records.ofExecution(t.request.executionId))
          expect(rows[0]).toMatchObject({ state: "CANCELLING", reason: "still running when the run gave up waiting" })
        })),
    { timeout: 10_000 }
  )
})
