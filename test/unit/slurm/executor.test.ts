/**
 * The Slurm executor's decisions against a scripted cluster: a fake SlurmClient whose jobs move
 * through the states a test lays out, "running" by appending to their events files as a job would.
 * The real cluster is exercised in test/integration/slurm; these cover what a one-node test cluster
 * cannot easily show (preemption, a controller that forgot a job with accounting off, rate limits).
 */
import { Effect, Either, Exit, Fiber, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import toy from "../../../pipelines/toy.ts"
import { WorkerFailed } from "../../../src/domain/Errors.ts"
import type { SlurmSettings } from "../../../src/domain/Slurm.ts"
import { Reporter } from "../../../src/engine/Reporter.ts"
import type { ExecutionRequest } from "../../../src/executor/Executor.ts"
import { Executor } from "../../../src/executor/Executor.ts"
import { Lineage } from "../../../src/lineage/Lineage.ts"
import type { ResolvedPipeline } from "../../../src/Pipeline.ts"
import { resolve } from "../../../src/Pipeline.ts"
import { SlurmCommandFailed } from "../../../src/slurm/errors.ts"
import { makeJobRecords } from "../../../src/slurm/JobRecords.ts"
import type { JobInfo } from "../../../src/slurm/Output.ts"
import { slurmSettingsFromConfig } from "../../../src/slurm/Settings.ts"
import { SlurmClient } from "../../../src/slurm/SlurmClient.ts"
import { SlurmExecutor } from "../../../src/slurm/SlurmExecutor.ts"
import type { StageContext } from "../../../src/Stage.ts"
import { Workspace } from "../../../src/workspace/Workspace.ts"

/** One step of a scripted job: the state squeue shows at a poll, and events the job appends then. */
interface Step {
  readonly state: string | "gone"
  readonly events?: ReadonlyArray<Record<string, unknown>>
  readonly exitCode?: number
}

interface FakeJob {
  readonly id: string
  readonly eventsPath: string
  readonly steps: Array<Step>
  state: string
  restarts: number
  exitCode: number | null
}

const fakeCluster = (scripts: Array<(taskIndex: number) => Array<Step>>, refuse?: string) => {
  const jobs = new Map<string, FakeJob>()
  const submissions: Array<{ id: string; script: string; at: number }> = []
  const cancelled: Array<string> = []
  let next = 100
  const info = (job: FakeJob): JobInfo => ({
    jobId: job.id,
    state: job.state,
    reason: null,
    nodeList: "n1",
    exitCode: job.exitCode,
    signal: job.exitCode === null ? null : 0,
    restarts: job.restarts,
    startedAt: null,
    endedAt: null
  })
  const advance = (job: FakeJob) => {
    const step = job.steps.shift()
    if (step === undefined) return
    if (job.state === "RUNNING" && step.state === "PENDING") job.restarts++
    job.state = step.state
    if (step.exitCode !== undefined) job.exitCode = step.exitCode
    for (const event of step.events ?? []) fs.appendFileSync(job.eventsPath, JSON.stringify(event) + "\n")
  }
  const client = SlurmClient.make({
    submit: (script: string) =>
      refuse !== undefined ?
        Effect.fail(new SlurmCommandFailed({ command: `sbatch ${script}`, exitCode: 1, stderr: refuse })) :
        Effect.sync(() => {
          const id = String(next++)
          const text = fs.readFileSync(script, "utf8")
          submissions.push({ id, script: text, at: Date.now() })
          const specs = [...text.matchAll(/spec=(\S+);/g)].map((m) => JSON.parse(fs.readFileSync(m[1]!, "utf8")))
          const steps = scripts.shift() ?? (() => [{ state: "COMPLETED" }])
          specs.forEach((spec: { eventsPath: string }, i) => {
            const jobId = specs.length > 1 ? `${id}_${i}` : id
            jobs.set(jobId, {
              id: jobId,
              eventsPath: spec.eventsPath,
              steps: steps(i),
              state: "PENDING",
              restarts: 0,
              exitCode: null
            })
          })
          return id
        }),
    queue: (ids: ReadonlyArray<string>) =>
      Effect.sync(() =>
        ids.flatMap((id) => {
          const job = jobs.get(id)
          if (!job) return []
          advance(job)
          return job.state === "gone" ? [] : [info(job)]
        })
      ),
    show: (id: string) =>
      Effect.sync(() => {
        const job = jobs.get(id)
        return job && job.state !== "gone" ? info(job) : undefined
      }),
    accounting: () => Effect.succeed("disabled" as const),
    cancel: (ids: ReadonlyArray<string>) =>
      Effect.sync(() => {
        for (const id of ids) {
          cancelled.push(id)
          const job = jobs.get(id)
          if (job) {
            job.steps.splice(0, job.steps.length, { state: "CANCELLED", events: [{ t: "interrupted" }], exitCode: 0 })
          }
        }
      }),
    gpusPerNode: () => Effect.succeed(0),
    check: Effect.void
  })
  return { client, jobs, submissions, cancelled }
}

const start = { t: "start", attempt: 0, host: "n1", pid: 1, at: 0 }
const result = (value: unknown) => ({ t: "result", value })

interface Harness {
  readonly pipeline: ResolvedPipeline
  readonly request: (stageId: string) => Effect.Effect<ExecutionRequest, never, Lineage>
  readonly info: Array<string>
  readonly metrics: Array<[string, number, number | null]>
}

const harness = Effect.gen(function*() {
  const pipeline = yield* resolve(toy, {})
  const lineage = yield* Lineage
  const ws = yield* Workspace
  const runId = "run-1"
  yield* lineage.startRun({
    id: runId,
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
  const metrics: Array<[string, number, number | null]> = []
  let n = 0
  const request = (stageId: string) =>
    Effect.gen(function*() {
      const stage = pipeline.byId.get(stageId)!
      const executionId = `exec-${++n}`
      yield* Effect.orDie(lineage.startExecution({
        id: executionId,
        runId,
        stageId,
        fingerprint: `fp-${n}`,
        version: "1",
        params: {},
        inputHashes: {},
        status: "running",
        startedAt: Date.now(),
        host: "h",
        executor: "slurm",
        logPath: "log",
        outputDir: "out"
      }, []))
      const workDir = path.join(ws.staging, `s${n}`)
      fs.mkdirSync(workDir, { recursive: true })
      const logPath = path.join(ws.logs, `${n}.log`)
      fs.mkdirSync(ws.logs, { recursive: true })
      const ctx: StageContext<unknown> = {
        stageId,
        params: stage.params,
        inputs: {},
        output: (name) => path.join(workDir, name),
        workDir,
        logPath,
        gpus: [],
        cpus: 1,
        log: (message) => Effect.sync(() => fs.appendFileSync(logPath, message + "\n")),
        progress: () => Effect.void,
        metric: (name, step, value) => Effect.sync(() => void metrics.push([name, step, value])),
        workerStarted: () => Effect.void
      }
      return { stage, ctx, executionId, fingerprint: `fp-${n}` }
    })
  return { pipeline, request, metrics }
})

const settings = (config: Record<string, string> = {}): SlurmSettings =>
  Either.getOrThrow(slurmSettingsFromConfig({ "slurm.poll": "0.01", "slurm.cancelTimeout": "5", ...config }))

const run = <A>(
  scripts: Array<(taskIndex: number) => Array<Step>>,
  body: (
    h: Omit<Harness, "info"> & { cluster: ReturnType<typeof fakeCluster> }
  ) => Effect.Effect<A, unknown, Executor | Lineage>,
  config: Record<string, string> = {},
  refuse?: string
) => {
  const cluster = fakeCluster(scripts, refuse)
  const info: Array<string> = []
  const reporter = Layer.succeed(Reporter, {
    started: () => {},
    progress: () => {},
    finished: () => {},
    info: (line) => void info.push(line),
    close: () => {}
  })
  const workspace = Layer.sync(Workspace, () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "fp-slurm-exec-"))
    return {
      root,
      database: path.join(root, "lineage.sqlite"),
      artifacts: path.join(root, "artifacts"),
      staging: path.join(root, "staging"),
      logs: path.join(root, "logs"),
      trash: path.join(root, ".trash"),
      lock: path.join(root, ".lock")
    }
  })
  const executor = SlurmExecutor.layer({
    pipeline: "toy",
    preset: "default",
    overrides: [],
    config: {},
    settings: settings(config),
    gpusPerNode: 0,
    jobCommand: ["node", "flame-pipe.js", "job", "toy"]
  }).pipe(Layer.provide(Layer.succeed(SlurmClient, cluster.client)))
  const layer = Layer.provideMerge(executor, Layer.mergeAll(Lineage.Test, workspace, reporter))
  return Effect.runPromise(
    Effect.gen(function*() {
      const h = yield* harness
      const value = yield* body({ ...h, cluster })
      return { value, info, cluster }
    }).pipe(Effect.scoped, Effect.provide(layer)) as Effect.Effect<
      { value: A; info: Array<string>; cluster: typeof cluster },
      never,
      never
    >
  )
}

const execute = (request: ExecutionRequest) => Effect.flatMap(Executor, (e) => e.execute(request))

/** The Slurm jobs lineage holds for an execution (read while the in-memory database is open). */
const jobRows = (executionId: string) =>
  Effect.flatMap(Lineage, (l) => Effect.orDie(makeJobRecords(l.db).ofExecution(executionId)))

describe("Slurm executor", () => {
  it("follows a job Slurm requeues: same job, no resubmission, the restarted attempt's result", async () => {
    const { cluster, info, value } = await run(
      [() => [
        { state: "RUNNING", events: [start, { t: "metric", name: "loss", step: 1, value: 3 }] },
        { state: "PENDING" },
        { state: "PENDING" },
        { state: "RUNNING", events: [{ ...start, attempt: 1 }, result({ count: 100 })] },
        { state: "COMPLETED", exitCode: 0 }
      ]],
      ({ request }) =>
        Effect.gen(function*() {
          const req = yield* request("generate")
          const out = yield* execute(req)
          return { out, rows: yield* jobRows(req.executionId) }
        })
    )
    expect(value.out).toEqual({ count: 100 })
    expect(cluster.submissions).toHaveLength(1)
    expect(info.some((l) => l.includes("Slurm job 100 was requeued (restart 1); it starts over"))).toBe(true)
    expect(value.rows).toMatchObject([{ jobId: "100", submission: 1, state: "COMPLETED", restarts: 1, nodeList: "n1" }])
  })

  it("submits a job again when Slurm preempted it (cancel mode), as the same execution", async () => {
    const { cluster, info, value } = await run(
      [
        () => [{ state: "RUNNING", events: [start] }, { state: "PREEMPTED", exitCode: 0 }],
        () => [{ state: "RUNNING", events: [start, result({ count: 7 })] }, { state: "COMPLETED", exitCode: 0 }]
      ],
      ({ request }) =>
        Effect.gen(function*() {
          const req = yield* request("generate")
          return { out: yield* execute(req), rows: yield* jobRows(req.executionId) }
        })
    )
    expect(value.out).toEqual({ count: 7 })
    expect(cluster.submissions).toHaveLength(2)
    expect(info.some((l) => l.includes("Slurm job 100 ended PREEMPTED; submitting it again (1 of 3)"))).toBe(true)
    expect(value.rows.map((r) => [r.jobId, r.submission, r.state])).toEqual([["100", 1, "PREEMPTED"], [
      "101",
      2,
      "COMPLETED"
    ]])
    // The spec of the resubmission says so: a stage that cannot resume starts from an empty staging directory.
    expect(cluster.submissions[1]!.script).toContain("task-0.json")
  })

  it("submits again a requeued job that failed before its stage started again (the node refused to relaunch it)", async () => {
    const { cluster, value } = await run(
      [
        () => [{ state: "RUNNING", events: [start] }, { state: "PENDING" }, { state: "FAILED", exitCode: 1 }],
        () => [{ state: "RUNNING", events: [start, result({ count: 3 })] }, { state: "COMPLETED", exitCode: 0 }]
      ],
      ({ request }) => Effect.flatMap(request("generate"), execute)
    )
    expect(value).toEqual({ count: 3 })
    expect(cluster.submissions).toHaveLength(2)
  })

  it("gives up on a job preempted more often than maxResubmits allows", async () => {
    const preempted = () => [{ state: "RUNNING", events: [start] }, { state: "PREEMPTED" }]
    const { value } = await run(
      [preempted, preempted],
      ({ request }) => Effect.either(Effect.flatMap(request("generate"), execute)),
      { "slurm.maxResubmits": "1" }
    )
    expect(Either.isLeft(value) && value.left.message).toContain("Slurm job 101 ended PREEMPTED")
  })

  it("with accounting off, a job the controller has forgotten is decided by its events file", async () => {
    const { value } = await run(
      [
        () => [{ state: "RUNNING", events: [start, result({ count: 1 })] }, { state: "gone" }],
        () => [{ state: "RUNNING", events: [start] }, { state: "gone" }]
      ],
      ({ request }) =>
        Effect.gen(function*() {
          const done = yield* Effect.either(Effect.flatMap(request("generate"), execute))
          const lost = yield* Effect.either(Effect.flatMap(request("filter"), execute))
          return { done, lost }
        })
    )
    expect(value.done).toEqual(Either.right({ count: 1 }))
    expect(Either.isLeft(value.lost) && value.lost.left.message).toContain(
      "Slurm job 101 is no longer known to Slurm (and sacct is not available) and reported no result"
    )
  })

  it("returns the stage's own failure, as the job reported it", async () => {
    const failure = new WorkerFailed({
      stage: "sum",
      reason: "worker failed",
      exitCode: 3,
      signal: null,
      logPath: "l",
      logTail: ["boom"]
    })
    const { value } = await run(
      [() => [{ state: "RUNNING", events: [start, { t: "failed", error: { ...failure, _tag: "WorkerFailed" } }] }, {
        state: "FAILED",
        exitCode: 1
      }]],
      ({ request }) => Effect.either(Effect.flatMap(request("sum"), execute))
    )
    expect(Either.isLeft(value) && value.left).toMatchObject({ _tag: "WorkerFailed", exitCode: 3, logTail: ["boom"] })
  })

  it("submits stages of one kind that become ready together as one job array", async () => {
    const { cluster, value } = await run(
      [(i) => [{ state: "RUNNING", events: [start, result({ count: i })] }, { state: "COMPLETED", exitCode: 0 }]],
      ({ request }) =>
        Effect.forEach(["square/0", "square/1", "square/2"], (id) => Effect.flatMap(request(id), execute), {
          concurrency: "unbounded"
        })
    )
    expect(value).toEqual([{ count: 0 }, { count: 1 }, { count: 2 }])
    expect(cluster.submissions).toHaveLength(1)
    expect(cluster.submissions[0]!.script).toContain("#SBATCH --array=0-2")
    expect([...cluster.jobs.keys()]).toEqual(["100_0", "100_1", "100_2"])
  })

  it("keeps to the submission rate", async () => {
    const done = () => [{ state: "RUNNING", events: [start, result({ count: 0 })] }, { state: "COMPLETED" }]
    const { cluster } = await run(
      [done, done, done, done],
      ({ request }) =>
        Effect.forEach(["generate", "filter", "square/0", "report"], (id) => Effect.flatMap(request(id), execute), {
          concurrency: "unbounded",
          discard: true
        }),
      { "slurm.submitRate": "10", "slurm.submitBurst": "1", "slurm.arrays": "false" }
    )
    const at = cluster.submissions.map((s) => s.at)
    expect(at).toHaveLength(4)
    // A bucket of one token refilled every 100 ms: four submissions span at least 300 ms.
    expect(at[3]! - at[0]!).toBeGreaterThanOrEqual(280)
  })

  it("on interruption cancels the job with scancel and waits for Slurm to end it", async () => {
    const { cluster, value } = await run(
      [() => [{ state: "RUNNING", events: [start] }, ...Array.from({ length: 1000 }, () => ({ state: "RUNNING" }))]],
      ({ cluster, request }) =>
        Effect.gen(function*() {
          const req = yield* request("sum")
          const fiber = yield* Effect.fork(execute(req))
          while (cluster.jobs.get("100")?.state !== "RUNNING") yield* Effect.sleep("5 millis")
          const exit = yield* Fiber.interrupt(fiber)
          return { exit, rows: yield* jobRows(req.executionId) }
        })
    )
    expect(Exit.isInterrupted(value.exit)).toBe(true)
    expect(cluster.cancelled).toEqual(["100"])
    expect(value.rows[0]).toMatchObject({ state: "CANCELLED" })
  })

  it("fails a stage whose submission sbatch refuses, with sbatch's reason", async () => {
    const { value } = await run(
      [],
      ({ request }) => Effect.either(Effect.flatMap(request("generate"), execute)),
      {},
      "sbatch: error: Batch job submission failed: Requested node configuration is not available"
    )
    expect(Either.isLeft(value) && value.left).toMatchObject({
      _tag: "StageFailed",
      stage: "generate",
      reason: expect.stringContaining("sbatch refused the job: sbatch /") as unknown as string
    })
    expect(Either.isLeft(value) && value.left.message).toContain("Requested node configuration is not available")
  })
})
