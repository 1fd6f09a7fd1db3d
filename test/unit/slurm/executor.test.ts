/**
 * The Slurm executor's decisions against a scripted cluster: a fake SlurmClient whose jobs move
 * through the states a test lays out, "running" by appending to their events files as a job would.
 * The real cluster is exercised in test/integration/slurm; these cover what a one-node test cluster
 * cannot easily show (preemption, a controller that forgot a job with accounting off, rate limits).
 */
import { it } from "@effect/vitest"
import { Effect, Either, Exit, Fiber, Layer, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect } from "vitest"
import toy from "../../../pipelines/toy.ts"
import { servicesLayer } from "../../../src/cli/Services.ts"
import { WorkerFailed } from "../../../src/domain/Errors.ts"
import type { SlurmSettings } from "../../../src/domain/Slurm.ts"
import { Reporter } from "../../../src/engine/Reporter.ts"
import { run as runPipeline } from "../../../src/engine/Runner.ts"
import type { ExecutionRequest } from "../../../src/executor/Executor.ts"
import { Executor } from "../../../src/executor/Executor.ts"
import { Lineage } from "../../../src/lineage/Lineage.ts"
import type { PipelineDefinition, ResolvedPipeline } from "../../../src/Pipeline.ts"
import * as Pipeline from "../../../src/Pipeline.ts"
import { resolve } from "../../../src/Pipeline.ts"
import { SlurmCommandFailed } from "../../../src/slurm/errors.ts"
import { makeJobRecords } from "../../../src/slurm/JobRecords.ts"
import type { JobInfo } from "../../../src/slurm/Output.ts"
import { slurmSettingsFromConfig } from "../../../src/slurm/Settings.ts"
import { SlurmClient } from "../../../src/slurm/SlurmClient.ts"
import { SlurmExecutor } from "../../../src/slurm/SlurmExecutor.ts"
import type { StageContext } from "../../../src/Stage.ts"
import { define, node } from "../../../src/Stage.ts"
import { Workspace } from "../../../src/workspace/Workspace.ts"
import { generate } from "../../../stages/toy/index.ts"

/**
 * One step of a scripted job: the state squeue shows at a poll, events the job appends then, and
 * directories it creates in its staging directory (checkpoints); `probe` looks at the job's files then.
 */
interface Step {
  readonly state: string | "gone"
  readonly events?: ReadonlyArray<Record<string, unknown>>
  readonly exitCode?: number
  readonly dirs?: ReadonlyArray<string>
  readonly files?: Readonly<Record<string, string>>
  readonly probe?: (job: FakeJob) => void
}

interface FakeJob {
  readonly id: string
  readonly eventsPath: string
  readonly spec: { readonly workDir: string; readonly fencePath: string; readonly earlierEvents: Array<string> }
  readonly steps: Array<Step>
  state: string
  restarts: number
  exitCode: number | null
}

const fakeCluster = (scripts: Array<(taskIndex: number) => Array<Step>>, refuse?: string) => {
  const jobs = new Map<string, FakeJob>()
  const submissions: Array<{ id: string; script: string; flags: ReadonlyArray<string>; at: number }> = []
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
    endedAt: null,
    timeLimit: "00:01:00"
  })
  const advance = (job: FakeJob) => {
    const step = job.steps.shift()
    if (step === undefined) return
    if (job.state === "RUNNING" && step.state === "PENDING") job.restarts++
    job.state = step.state
    if (step.exitCode !== undefined) job.exitCode = step.exitCode
    for (const dir of step.dirs ?? []) fs.mkdirSync(path.join(job.spec.workDir, dir), { recursive: true })
    for (const [file, text] of Object.entries(step.files ?? {})) {
      fs.writeFileSync(path.join(job.spec.workDir, file), text)
    }
    for (const event of step.events ?? []) fs.appendFileSync(job.eventsPath, JSON.stringify(event) + "\n")
    step.probe?.(job)
  }
  const client = SlurmClient.make({
    submit: (script: string, flags: ReadonlyArray<string> = []) =>
      refuse !== undefined ?
        Effect.fail(new SlurmCommandFailed({ command: `sbatch ${script}`, exitCode: 1, stderr: refuse })) :
        Effect.sync(() => {
          const id = String(next++)
          const text = fs.readFileSync(script, "utf8")
          submissions.push({ id, script: text, flags, at: Date.now() })
          const specs = [...text.matchAll(/spec=(\S+);/g)].map((m) => JSON.parse(fs.readFileSync(m[1]!, "utf8")))
          const steps = scripts.shift() ?? (() => [{ state: "COMPLETED" }])
          specs.forEach((spec: FakeJob["spec"] & { eventsPath: string }, i) => {
            const jobId = specs.length > 1 ? `${id}_${i}` : id
            jobs.set(jobId, {
              id: jobId,
              eventsPath: spec.eventsPath,
              spec,
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
const result = (value: unknown, attempt = 0) => ({ t: "result", attempt, value })

/** A stage that checkpoints and resumes, as training does: its checkpoints are its outputs. */
const checkpointed = define({
  kind: "test/checkpointed",
  version: "1",
  params: Schema.Struct({}),
  outputs: () => ({ iter_0000010: "dir" as const, iter_0000020: "dir" as const, iter_0000030: "dir" as const }),
  result: Schema.Struct({ iterations: Schema.Number }),
  resumable: true,
  run: () => Effect.succeed({ iterations: 30 })
})
const withTraining = Pipeline.define({
  name: "training",
  description: "a resumable stage and a plain one",
  presets: { default: "the only one" },
  defaultPreset: "default",
  build:
    () => [node(checkpointed, { id: "train/x" }), node(generate, { id: "generate", params: { count: 5, seed: 1 } })]
})

const fenceOf = (job: FakeJob) => JSON.parse(fs.readFileSync(job.spec.fencePath, "utf8")) as unknown

interface Harness {
  readonly pipeline: ResolvedPipeline
  readonly request: (stageId: string) => Effect.Effect<ExecutionRequest, never, Lineage>
  readonly info: Array<string>
  readonly metrics: Array<[string, number, number | null]>
}

const harness = (definition: PipelineDefinition) =>
  Effect.gen(function*() {
    const pipeline = yield* resolve(definition, {})
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
  refuse?: string,
  definition: PipelineDefinition = toy
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
  return Effect.gen(function*() {
    const h = yield* harness(definition)
    const value = yield* body({ ...h, cluster })
    return { value, info, cluster }
  }).pipe(Effect.scoped, Effect.provide(layer)) as Effect.Effect<
    { value: A; info: Array<string>; cluster: typeof cluster },
    never,
    never
  >
}

const execute = (request: ExecutionRequest) => Effect.flatMap(Executor, (e) => e.execute(request))

/** The Slurm jobs lineage holds for an execution (read while the in-memory database is open). */
const jobRows = (executionId: string) =>
  Effect.flatMap(Lineage, (l) => Effect.orDie(makeJobRecords(l).ofExecution(executionId)))

/** Writes its output and a loss per step: what a Slurm job of it reports is scripted by the fake cluster. */
const counting = define({
  kind: "test/counting",
  version: "1",
  params: Schema.Struct({}),
  outputs: () => ({ "out.txt": "file" as const }),
  result: Schema.Struct({ count: Schema.Number }),
  run: () => Effect.die("runs on the (fake) cluster only")
})
const counted = Pipeline.define({
  name: "counted",
  description: "one stage, run as a Slurm job",
  presets: { default: "the only one" },
  defaultPreset: "default",
  build: () => [node(counting, { id: "count" })]
})

describe("Slurm executor", () => {
  // The executor polls the (fake) cluster and paces its submissions on the real clock.
  it.live("follows a job Slurm requeues: same job, no resubmission, the restarted attempt's result", () =>
    Effect.gen(function*() {
      const { cluster, info, value } = yield* run(
        [() => [
          { state: "RUNNING", events: [start, { t: "metric", name: "loss", step: 1, value: 3 }] },
          { state: "PENDING" },
          { state: "PENDING" },
          { state: "RUNNING", events: [{ ...start, attempt: 1 }, result({ count: 100 }, 1)] },
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
      expect(value.rows).toMatchObject([{
        jobId: "100",
        submission: 1,
        state: "COMPLETED",
        restarts: 1,
        nodeList: "n1"
      }])
    }))

  it.live("submits a job again when Slurm preempted it (cancel mode), as the same execution", () =>
    Effect.gen(function*() {
      const { cluster, info, value } = yield* run(
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
    }))

  it.live("submits again a requeued job that failed before its stage started again (the node refused to relaunch it)", () =>
    Effect.gen(function*() {
      const { cluster, value } = yield* run(
        [
          () => [{ state: "RUNNING", events: [start] }, { state: "PENDING" }, { state: "FAILED", exitCode: 1 }],
          () => [{ state: "RUNNING", events: [start, result({ count: 3 })] }, { state: "COMPLETED", exitCode: 0 }]
        ],
        ({ request }) => Effect.flatMap(request("generate"), execute)
      )
      expect(value).toEqual({ count: 3 })
      expect(cluster.submissions).toHaveLength(2)
    }))

  it.live("gives up on a job preempted more often than maxResubmits allows", () =>
    Effect.gen(function*() {
      const preempted = () => [{ state: "RUNNING", events: [start] }, { state: "PREEMPTED" }]
      const { value } = yield* run(
        [preempted, preempted],
        ({ request }) => Effect.either(Effect.flatMap(request("generate"), execute)),
        { "slurm.maxResubmits": "1" }
      )
      expect(Either.isLeft(value) && value.left.message).toContain("Slurm job 101 ended PREEMPTED")
    }))

  it.live("with accounting off, a job the controller has forgotten is decided by its events file", () =>
    Effect.gen(function*() {
      const { value } = yield* run(
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
    }))

  it.live("returns the stage's own failure, as the job reported it", () =>
    Effect.gen(function*() {
      const failure = new WorkerFailed({
        stage: "sum",
        reason: "worker failed",
        exitCode: 3,
        signal: null,
        logPath: "l",
        logTail: ["boom"]
      })
      const { value } = yield* run(
        [() => [{ state: "RUNNING", events: [start, { t: "failed", error: { ...failure, _tag: "WorkerFailed" } }] }, {
          state: "FAILED",
          exitCode: 1
        }]],
        ({ request }) => Effect.either(Effect.flatMap(request("sum"), execute))
      )
      expect(Either.isLeft(value) && value.left).toMatchObject({ _tag: "WorkerFailed", exitCode: 3, logTail: ["boom"] })
    }))

  it.live("submits stages of one kind that become ready together as one job array", () =>
    Effect.gen(function*() {
      const { cluster, value } = yield* run(
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
    }))

  it.live("keeps to the submission rate", () =>
    Effect.gen(function*() {
      const done = () => [{ state: "RUNNING", events: [start, result({ count: 0 })] }, { state: "COMPLETED" }]
      const { cluster } = yield* run(
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
    }))

  it.live("on interruption cancels the job with scancel and waits for Slurm to end it", () =>
    Effect.gen(function*() {
      const { cluster, value } = yield* run(
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
    }))

  it.live("a resumable stage that hits its time limit is submitted again, as the same execution, from its newest checkpoint", () =>
    Effect.gen(function*() {
      const { cluster, info, value } = yield* run(
        [
          () => [
            { state: "RUNNING", events: [start], dirs: ["iter_0000010"] },
            { state: "RUNNING", dirs: ["iter_0000020"] },
            { state: "TIMEOUT", events: [{ t: "interrupted" }], exitCode: 0 }
          ],
          () => [
            { state: "RUNNING", events: [start], dirs: ["iter_0000030"] },
            { state: "COMPLETED", events: [result({ iterations: 30 })], exitCode: 0 }
          ]
        ],
        ({ request }) =>
          Effect.gen(function*() {
            const req = yield* request("train/x")
            return { out: yield* execute(req), rows: yield* jobRows(req.executionId) }
          }),
        {},
        undefined,
        withTraining
      )
      expect(value.out).toEqual({ iterations: 30 })
      expect(info).toContain(
        "  train/x: job 100 hit its time limit (00:01:00); resubmitting (1 of 3), resuming from iter_0000020"
      )
      expect(value.rows.map((r) => [r.jobId, r.submission, r.state])).toEqual([["100", 1, "TIMEOUT"], [
        "101",
        2,
        "COMPLETED"
      ]])
      // The resubmission knows where the first job reported, and names itself in the execution's fence.
      const second = cluster.jobs.get("101")!
      expect(second.spec.earlierEvents).toEqual([cluster.jobs.get("100")!.eventsPath])
      expect(fenceOf(second)).toEqual({ submission: 2, attempt: 0 })
    }))

  it.live("a resumable stage that timed out without a new checkpoint fails: another submission would get no further", () =>
    Effect.gen(function*() {
      const timesOut = (dirs: ReadonlyArray<string>) => () => [
        { state: "RUNNING", events: [start], dirs },
        { state: "TIMEOUT", exitCode: 0 }
      ]
      const { cluster, value } = yield* run(
        [timesOut(["iter_0000010"]), timesOut([])],
        ({ request }) => Effect.either(Effect.flatMap(request("train/x"), execute)),
        {},
        undefined,
        withTraining
      )
      expect(cluster.submissions).toHaveLength(2)
      expect(Either.isLeft(value) && value.left.message).toContain(
        "Slurm job 101 ran out of time: it reached its time limit (00:01:00)"
      )
      expect(Either.isLeft(value) && value.left.message).toContain(
        "it wrote no checkpoint after iter_0000010, which it resumed from"
      )

      const { value: none } = yield* run(
        [timesOut([])],
        ({ request }) => Effect.either(Effect.flatMap(request("train/x"), execute)),
        {},
        undefined,
        withTraining
      )
      expect(Either.isLeft(none) && none.left.message).toContain(
        "it wrote no checkpoint, so a resubmission would start over"
      )
    }))

  it.live("a resumable stage's time-limit resubmissions count against maxResubmits; its checkpoints are kept", () =>
    Effect.gen(function*() {
      const progress = (dir: string) => () => [
        { state: "RUNNING", events: [start], dirs: [dir] },
        { state: "TIMEOUT", exitCode: 0 }
      ]
      const { cluster, value } = yield* run(
        [progress("iter_0000010"), progress("iter_0000020")],
        ({ request }) => Effect.either(Effect.flatMap(request("train/x"), execute)),
        { "slurm.maxResubmits": "1" },
        undefined,
        withTraining
      )
      expect(cluster.submissions).toHaveLength(2)
      expect(Either.isLeft(value) && value.left.message).toContain(
        "its checkpoints up to iter_0000020 are kept for the next run (resubmitted 1 time(s), slurm.maxResubmits)"
      )
    }))

  it.live("a stage that cannot resume fails when its job hits its time limit, saying it ran out of time and which limit", () =>
    Effect.gen(function*() {
      const { cluster, value } = yield* run(
        [() => [
          { state: "RUNNING", events: [start] },
          // The workers die of Slurm's signal; the time limit, not their exit, is the reason.
          {
            state: "TIMEOUT",
            events: [{ t: "failed", error: { _tag: "Unknown", message: "worker killed by SIGTERM" } }],
            exitCode: 0
          }
        ]],
        ({ request }) => Effect.either(Effect.flatMap(request("generate"), execute)),
        {},
        undefined,
        withTraining
      )
      expect(cluster.submissions).toHaveLength(1)
      expect(Either.isLeft(value) && value.left).toMatchObject({ _tag: "WorkerFailed", stage: "generate" })
      expect(Either.isLeft(value) && value.left.message).toContain(
        "Slurm job 100 ran out of time: it reached its time limit (00:01:00) and Slurm stopped it; raise the limit with slurm.time or slurm.stage.<glob>.time"
      )
    }))

  it.live("fences a requeued job's attempts: the next one is named on the requeue, and lines of the old one are ignored", () =>
    Effect.gen(function*() {
      const fences: Array<unknown> = []
      const probe = (job: FakeJob) => void fences.push(fenceOf(job))
      const metric = (attempt: number, step: number, value: number) => ({
        t: "metric",
        attempt,
        name: "loss",
        step,
        value
      })
      const { value, cluster } = yield* run(
        [() => [
          { state: "RUNNING", events: [start, metric(0, 1, 9), metric(0, 2, 8)], probe },
          { state: "PENDING" },
          {
            state: "RUNNING",
            // Looked at before the engine reads this step's events: what the requeue alone did.
            probe,
            events: [
              { ...start, attempt: 1 },
              // The first attempt's node lost its controller but not its processes: it is still writing.
              metric(0, 3, 666),
              metric(1, 1, 7),
              { t: "result", attempt: 0, value: { count: -1 } },
              metric(1, 2, 6),
              metric(1, 3, 5)
            ]
          },
          { state: "COMPLETED", events: [result({ count: 100 }, 1), metric(0, 4, 666)], exitCode: 0 }
        ]],
        ({ metrics, request }) =>
          Effect.gen(function*() {
            const req = yield* request("generate")
            return { out: yield* execute(req), metrics, log: fs.readFileSync(req.ctx.logPath, "utf8") }
          })
      )
      // Named at submission, then, once Slurm requeued the job, its next attempt: before it started.
      expect(fences).toEqual([{ submission: 1, attempt: 0 }, { submission: 1, attempt: 1 }])
      expect(fenceOf(cluster.jobs.get("100")!)).toEqual({ submission: 1, attempt: 1 })
      expect(value.out).toEqual({ count: 100 })
      expect(value.metrics).toEqual([["loss", 1, 9], ["loss", 2, 8], ["loss", 1, 7], ["loss", 2, 6], ["loss", 3, 5]])
      expect(value.log).toContain("[engine] ignored 2 event(s) of attempt 0 of job 100: attempt 1 has replaced it")
    }))

  it.live("a requeue it did not see is named in the fence by the next attempt's start", () =>
    Effect.gen(function*() {
      const { value, cluster } = yield* run(
        [() => [
          { state: "RUNNING", events: [start, { t: "metric", name: "loss", step: 1, value: 2 }] },
          // Requeued and running again between two polls: the engine never sees it pending.
          {
            state: "RUNNING",
            events: [
              { ...start, attempt: 1 },
              // A line without an attempt is the first attempt's: stale once the second has started.
              { t: "metric", name: "loss", step: 2, value: 666 },
              { t: "metric", attempt: 1, name: "loss", step: 2, value: 3 },
              { t: "result", attempt: 1, value: { count: 1 } }
            ]
          },
          { state: "COMPLETED", exitCode: 0 }
        ]],
        ({ metrics, request }) =>
          Effect.gen(function*() {
            const out = yield* Effect.flatMap(request("generate"), execute)
            return { out, metrics }
          })
      )
      expect(fenceOf(cluster.jobs.get("100")!)).toEqual({ submission: 1, attempt: 1 })
      expect(value.metrics).toEqual([["loss", 1, 2], ["loss", 2, 3]])
      expect(value.out).toEqual({ count: 1 })
    }))

  it.live("a requeued job's replayed steps reach lineage once each, the current attempt's values; the old attempt's are ignored", () =>
    Effect.gen(function*() {
      const loss = (attempt: number, step: number, value: number) => ({
        t: "metric",
        attempt,
        name: "loss",
        step,
        value
      })
      const cluster = fakeCluster([() => [
        { state: "RUNNING", events: [start, ...[1, 2, 3, 4, 5].map((i) => loss(0, i, 100 + i))] },
        { state: "PENDING" },
        {
          state: "RUNNING",
          files: { "out.txt": "8\n" },
          events: [
            { ...start, attempt: 1 },
            ...[1, 2, 3, 4, 5, 6, 7, 8].map((i) => loss(1, i, i)),
            // The requeued attempt's node had not stopped it: it goes on writing, after the new attempt.
            loss(0, 6, 666),
            result({ count: 8 }, 1)
          ]
        },
        { state: "COMPLETED", exitCode: 0 }
      ]])
      const ws = fs.mkdtempSync(path.join(os.tmpdir(), "fp-slurm-lineage-"))
      const executor = SlurmExecutor.layer({
        pipeline: "counted",
        preset: "default",
        overrides: [],
        config: {},
        settings: settings(),
        gpusPerNode: 0,
        jobCommand: ["node", "flame-pipe.js", "job", "counted"]
      }).pipe(Layer.provide(Layer.succeed(SlurmClient, cluster.client)))
      const { losses, summary } = yield* Effect.gen(function*() {
        const pipeline = yield* resolve(counted, {})
        const summary = yield* runPipeline(pipeline, {
          preset: "default",
          jobs: 1,
          cpus: 1,
          gpus: [],
          keepGoing: false,
          wait: false,
          overrides: [],
          argv: []
        })
        const execution = summary.stages[0]!.execution!
        const losses = (yield* Effect.flatMap(Lineage, (l) => l.metricsOf(execution)))
          .filter((m) => m.name === "loss").map((m) => [m.step, m.value])
          .sort((a, b) => a[0]! - b[0]!)
        return { losses, summary }
      }).pipe(Effect.provide(servicesLayer(ws, Reporter.silent, executor)))
      expect(summary.status).toBe("succeeded")
      expect(losses).toEqual([1, 2, 3, 4, 5, 6, 7, 8].map((i) => [i, i]))
    }))

  it.live("passes extra sbatch flags to sbatch as arguments, not in the batch script", () =>
    Effect.gen(function*() {
      const { cluster } = yield* run(
        [() => [{ state: "RUNNING", events: [start, result({ count: 1 })] }, { state: "COMPLETED", exitCode: 0 }]],
        ({ request }) => Effect.flatMap(request("generate"), execute),
        { "slurm.sbatch": "--exclusive --constraint=\"h100 nvlink\" -p debug" }
      )
      expect(cluster.submissions[0]!.flags).toEqual(["--exclusive", "--constraint=h100 nvlink", "-p", "debug"])
      expect(cluster.submissions[0]!.script).not.toContain("exclusive")
      expect(cluster.submissions[0]!.script).not.toContain("--partition")
    }))

  it.live("fails a stage whose submission sbatch refuses, with sbatch's reason", () =>
    Effect.gen(function*() {
      const { value } = yield* run(
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
    }))
})
