/**
 * Re-execution through the executor an audit is given (`audit --executor`): the executor is set up in
 * the scratch workspace, once per recorded invocation, and gets requests marked as re-executions with
 * the recorded params; each re-execution is recorded in the scratch lineage, where the executor's own
 * records (a Slurm job) can refer to it. Without an executor, re-execution stays in this process.
 */
import { describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import { Effect, Layer, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { IntegrityResult } from "../../../src/audit/Integrity.ts"
import { makeReexecutor } from "../../../src/audit/Reexecute.ts"
import type { RecordedInvocation } from "../../../src/audit/ReexecutionExecutor.ts"
import { ReexecutionExecutor } from "../../../src/audit/ReexecutionExecutor.ts"
import { Reporter } from "../../../src/engine/Reporter.ts"
import { runStageBody } from "../../../src/engine/StageRun.ts"
import type { ExecutionRequest } from "../../../src/executor/Executor.ts"
import { Executor } from "../../../src/executor/Executor.ts"
import { Lineage } from "../../../src/lineage/Lineage.ts"
import * as Pipeline from "../../../src/Pipeline.ts"
import { define, node } from "../../../src/Stage.ts"
import { sha256Text } from "../../../src/store/ContentHasher.ts"
import { Workspace } from "../../../src/workspace/Workspace.ts"
import { FakeLineage } from "./fakeLineage.ts"

const write = define({
  kind: "test/write",
  version: "1",
  params: Schema.Struct({ value: Schema.Int }),
  outputs: () => ({ "value.txt": "file" as const }),
  result: Schema.Struct({ value: Schema.Number }),
  run: (ctx) =>
    Effect.sync(() => {
      fs.writeFileSync(ctx.output("value.txt"), `${ctx.params.value}\n`)
      return { value: ctx.params.value }
    })
})

const definition = Pipeline.define({
  name: "reexecute-audit",
  description: "two stages whose params changed since a run recorded them",
  presets: { default: "the only one" },
  defaultPreset: "default",
  build: () => [
    node(write, { id: "a", params: { value: 1 } }),
    node(write, { id: "b", params: { value: 2 } })
  ]
})

/**
 * A run that recorded a=5 and b=6 (the pipeline resolves to 1 and 2 now), with the outputs those write;
 * its workspace is removed when the test's scope closes.
 */
const recordedRun = Effect.gen(function*() {
  const pipeline = yield* Pipeline.resolve(definition, {})
  const fake = new FakeLineage(pipeline)
  fake.run({ id: "run-1", overrides: { "a.value": "5", "b.value": "6" }, params: { a: { value: 5 }, b: { value: 6 } } })
  for (const [i, artifact] of fake.artifacts.entries()) {
    const value = artifact.executionId.endsWith(":a") ? 5 : 6
    fake.artifacts[i] = { ...artifact, hash: sha256Text(`${value}\n`) }
  }
  const records = fake.records()
  const integrity: IntegrityResult = {
    states: new Map(fake.artifacts.map((a) => [a.id, "intact" as const])),
    currentHashes: new Map(),
    manifests: new Map(),
    findings: [],
    bytesHashed: 0
  }
  const root = yield* Effect.acquireRelease(
    Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "fp-reexecute-executor-"))),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
  )
  const options = {
    root,
    trash: path.join(root, ".trash"),
    scratch: path.join(root, ".audit", "x"),
    gpus: [],
    restore: false
  }
  const reexecutor = makeReexecutor(records, integrity, pipeline.byId, options)
  const execution = (stage: string) => records.executions.get(`run-1:${stage}`)!
  return { root, options, reexecutor, execution }
})

/** An executor standing in for Slurm's: runs bodies here, noting what it was asked and where it was set up. */
const fakeExecutor = () => {
  const made: Array<RecordedInvocation> = []
  const requests: Array<{ readonly request: ExecutionRequest; readonly workspace: string }> = []
  const service = ReexecutionExecutor.of({
    name: "fake",
    layer: (invocation) =>
      Layer.effect(
        Executor,
        Effect.gen(function*() {
          made.push(invocation)
          const ws = yield* Workspace
          const lineage = yield* Lineage
          return Executor.of({
            name: "fake",
            info: { gpus: 0 },
            localSlots: false,
            recoverer: { executor: "fake", recover: () => Effect.void },
            execute: (request) =>
              Effect.gen(function*() {
                requests.push({ request, workspace: ws.root })
                // As the Slurm executor records its jobs: against the execution it was asked to run.
                yield* Effect.orDie(lineage.slurmJobs.record({
                  executionId: request.executionId,
                  jobId: "42",
                  submission: 1,
                  script: "slurm/job.sh",
                  state: "COMPLETED",
                  submittedAt: Date.now()
                }))
                return yield* runStageBody(request.stage, request.ctx)
              })
          })
        })
      )
  })
  return { made, requests, service }
}

const services = (root: string) =>
  Layer.mergeAll(Reporter.silent, Layer.provideMerge(Lineage.Default, Workspace.layer(root)))

const query = <A>(file: string, sql: string): Array<A> => {
  const db = new Database(file, { readonly: true })
  try {
    return db.prepare(sql).all() as Array<A>
  } finally {
    db.close()
  }
}

describe("audit re-execution through the executor it is given", () => {
  it.scoped("runs the recorded params through one executor per recorded invocation, set up in the scratch workspace", () =>
    Effect.gen(function*() {
      const { execution, options, reexecutor, root } = yield* recordedRun
      const fake = fakeExecutor()
      const results = yield* Effect.scoped(
        Effect.all([reexecutor.reexecute(execution("a"), "stages"), reexecutor.reexecute(execution("b"), "stages")])
      )
        .pipe(Effect.provide(services(root)), Effect.provideService(ReexecutionExecutor, fake.service))
      expect(results.map((r) => [r.stage, r.status, r.reason])).toEqual([["a", "reproduced", null], [
        "b",
        "reproduced",
        null
      ]])
      expect(results.every((r) => r.outputs.every((o) => o.equal))).toBe(true)

      // Both were recorded by the same run: one executor, set up as that run resolved the pipeline.
      expect(fake.made).toEqual([
        { pipeline: "reexecute-audit", preset: "default", overrides: ["a.value=5", "b.value=6"], config: {} }
      ])
      expect(fake.requests.map(({ request, workspace }) => ({
        stage: request.stage.id,
        params: request.stage.params,
        encoded: request.stage.encodedParams,
        reexecution: request.reexecution,
        fingerprint: request.fingerprint,
        workspace
      }))).toEqual([
        {
          stage: "a",
          params: { value: 5 },
          encoded: { value: 5 },
          reexecution: true,
          fingerprint: execution("a").fingerprint,
          workspace: options.scratch
        },
        {
          stage: "b",
          params: { value: 6 },
          encoded: { value: 6 },
          reexecution: true,
          fingerprint: execution("b").fingerprint,
          workspace: options.scratch
        }
      ])

      // The scratch lineage holds the re-executions, and the executor's records refer to them.
      const scratchDb = path.join(options.scratch, "lineage.sqlite")
      expect(query(scratchDb, "select executor, status, pipeline_source as source from runs")).toEqual([
        { executor: "fake", status: "succeeded", source: "reexecute-audit" }
      ])
      const executions = query<{ id: string; stage: string; status: string; fingerprint: string }>(
        scratchDb,
        "select id, stage_id as stage, status, fingerprint from executions order by stage_id"
      )
      expect(executions.map((e) => [e.stage, e.status, e.fingerprint])).toEqual([
        ["a", "succeeded", execution("a").fingerprint],
        ["b", "succeeded", execution("b").fingerprint]
      ])
      expect(fake.requests.map((r) => r.request.executionId)).toEqual(executions.map((e) => e.id))
      expect(query(scratchDb, "select job_id as job from slurm_jobs")).toEqual([{ job: "42" }, { job: "42" }])
      // Nothing of it reached the audited workspace.
      expect(query(path.join(root, "lineage.sqlite"), "select count(*) as n from runs")).toEqual([{ n: 0 }])
      expect(fs.existsSync(path.join(root, "slurm"))).toBe(false)
    }))

  it.scoped("fails the re-execution, saying why, when the executor cannot be set up", () =>
    Effect.gen(function*() {
      const { execution, reexecutor, root } = yield* recordedRun
      const result = yield* Effect.scoped(reexecutor.reexecute(execution("a"), "stages")).pipe(
        Effect.provide(services(root)),
        Effect.provideService(ReexecutionExecutor, {
          name: "slurm",
          layer: () => Layer.fail(new Error("--executor slurm needs a reachable Slurm cluster: sinfo failed"))
        })
      )
      expect(result.status).toBe("failed")
      expect(result.reason).toBe(
        "cannot set up the slurm executor: --executor slurm needs a reachable Slurm cluster: sinfo failed"
      )
    }))

  it.scoped("without one, re-executes in this process and keeps no scratch lineage", () =>
    Effect.gen(function*() {
      const { execution, options, reexecutor, root } = yield* recordedRun
      const result = yield* Effect.scoped(reexecutor.reexecute(execution("a"), "stages")).pipe(
        Effect.provide(services(root))
      )
      expect(result.status).toBe("reproduced")
      expect(fs.existsSync(path.join(options.scratch, "lineage.sqlite"))).toBe(false)
    }))
})
