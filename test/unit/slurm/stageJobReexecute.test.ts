/**
 * The job side's re-execution mode: a job re-executing a recorded execution for an audit runs the
 * params the spec carries (as recorded), although the pipeline resolves to others on the node; a job
 * in the normal mode refuses the same spec.
 */
import { it } from "@effect/vitest"
import { Cause, Effect, Exit, Option, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, onTestFinished } from "vitest"
import { canonicalJson } from "../../../src/engine/Fingerprint.ts"
import { readAllEvents } from "../../../src/executor/remote/Events.ts"
import { writeFence } from "../../../src/executor/remote/Fence.ts"
import { stageJob } from "../../../src/executor/remote/JobRunner.ts"
import type { JobSpecInput } from "../../../src/executor/remote/Protocol.ts"
import * as Pipeline from "../../../src/Pipeline.ts"
import { PipelineRegistry } from "../../../src/pipeline/Registry.ts"
import { define, node } from "../../../src/Stage.ts"

/** Writes `count` lines into an output named after the count. */
const lines = define({
  kind: "test/lines",
  version: "1",
  params: Schema.Struct({ count: Schema.Int.pipe(Schema.positive()) }),
  outputs: (p) => ({ [`lines-${p.count}.txt`]: "file" as const }),
  result: Schema.Struct({ count: Schema.Number }),
  run: (ctx) =>
    Effect.sync(() => {
      const text = Array.from({ length: ctx.params.count }, (_, i) => `${i + 1}\n`).join("")
      fs.writeFileSync(ctx.output(`lines-${ctx.params.count}.txt`), text)
      return { count: ctx.params.count }
    })
})

/** The pipeline as it is now: `lines` resolves to 3 lines; an execution recorded 25. */
const definition = Pipeline.define({
  name: "reexecute-test",
  description: "a stage whose params changed since an execution recorded them",
  presets: { default: "the only one" },
  defaultPreset: "default",
  build: () => [node(lines, { id: "lines", params: { count: 3 } })]
})

const registry = PipelineRegistry.fromBundle({ "reexecute-test": definition })

const jobFor = (fields: Pick<JobSpecInput, "params"> & Partial<Pick<JobSpecInput, "mode">>) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fp-job-reexecute-"))
  onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }))
  const spec: JobSpecInput = {
    version: 1,
    executionId: "reexec-1",
    stageId: "lines",
    pipeline: { ref: "reexecute-test", preset: "default", overrides: [], config: {}, gpus: 0 },
    inputs: {},
    workDir: path.join(dir, "staging"),
    logPath: path.join(dir, "stage.log"),
    eventsPath: path.join(dir, "task-0.events.jsonl"),
    resumable: false,
    submission: 1,
    cpus: 1,
    fencePath: path.join(dir, "fence.json"),
    ...fields
  }
  const specPath = path.join(dir, "task-0.json")
  fs.writeFileSync(specPath, JSON.stringify(spec))
  fs.writeFileSync(spec.eventsPath, "")
  writeFence(spec.fencePath, { submission: 1, attempt: 0 })
  return {
    spec,
    run: () => stageJob(specPath, { env: { SLURM_JOB_ID: "9" } }).pipe(Effect.provide(registry)),
    events: () => readAllEvents(spec.eventsPath) as ReadonlyArray<Record<string, unknown>>,
    log: () => (fs.existsSync(spec.logPath) ? fs.readFileSync(spec.logPath, "utf8") : "")
  }
}

const failureOf = (exit: Exit.Exit<unknown, unknown>) =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined

describe("a batch job re-executing a recorded execution", () => {
  const recorded = canonicalJson({ count: 25 })

  // The job polls its fence on the real clock.
  it.live("runs the params the spec carries, and the outputs they imply", () =>
    Effect.gen(function*() {
      const job = jobFor({ params: recorded, mode: "reexecute" })
      const exit = yield* Effect.exit(job.run())
      expect(Exit.isSuccess(exit), String(failureOf(exit))).toBe(true)
      // 25 lines in the output the recorded params name, not the 3 the pipeline resolves to now.
      const output = path.join(job.spec.workDir, "lines-25.txt")
      expect(fs.readFileSync(output, "utf8").split("\n").filter(Boolean)).toHaveLength(25)
      expect(fs.existsSync(path.join(job.spec.workDir, "lines-3.txt"))).toBe(false)
      expect(job.events().find((e) => e.t === "result")?.value).toEqual({ count: 25 })
      expect(job.log()).toContain(
        "[job] re-executing with the params the execution recorded (the pipeline resolves to others here)"
      )
    }))

  it.live("in the normal mode, the same spec is refused: the node resolves other params than the engine", () =>
    Effect.gen(function*() {
      const job = jobFor({ params: recorded })
      const exit = yield* Effect.exit(job.run())
      expect(String(failureOf(exit))).toContain("resolves to different params on this node than in the engine")
      expect(fs.existsSync(path.join(job.spec.workDir, "lines-25.txt"))).toBe(false)
      expect(job.events().find((e) => e.t === "failed")).toBeDefined()
    }))

  it.live("fails, naming the key, when the current definition cannot decode what was recorded", () =>
    Effect.gen(function*() {
      const job = jobFor({ params: canonicalJson({ count: -1 }), mode: "reexecute" })
      const exit = yield* Effect.exit(job.run())
      const failure = failureOf(exit) as { message: string } | undefined
      expect(failure?.message).toMatch(
        /^stage lines: recorded params do not decode with the current definition: count: Expected a positive number/
      )
      expect(job.events().map((e) => e.t)).toEqual(["start", "environment", "failed"])
    }))
})
