import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { StageFailed } from "../../../src/domain/Errors.ts"
import { encodeFailure, runStageBody, stageContext } from "../../../src/engine/StageRun.ts"
import type { AbandonedExecution, ExecutorShape, Recoverer } from "../../../src/executor/Executor.ts"
import { recoverAbandoned, Recoverers, recoverersFor } from "../../../src/executor/Executor.ts"
import { define } from "../../../src/Stage.ts"

const place = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fp-stagerun-"))
  return { inputs: {}, workDir: dir, logPath: path.join(dir, "stage.log"), gpus: [], cpus: 1 }
}
const silent = { progress: () => Effect.void, metric: () => Effect.void, workerStarted: () => Effect.void }

const stageOf = (run: (ctx: { output: (name: string) => string }) => Effect.Effect<unknown>) => ({
  id: "s",
  params: {},
  definition: define({
    kind: "test/stage-run",
    version: "1",
    params: Schema.Struct({}),
    outputs: () => ({ "out.txt": "file" as const }),
    result: Schema.Struct({ at: Schema.DateFromString }),
    run: run as never
  })
})

describe("one stage attempt", () => {
  it.effect("returns the body's result encoded with the result schema", () =>
    Effect.gen(function*() {
      // A Date decoded from its string form comes back as that string: the form lineage and events keep.
      const stage = stageOf(() => Effect.succeed({ at: "2024-01-02T00:00:00.000Z" }))
      const encoded = yield* runStageBody(stage, stageContext(stage, place(), silent))
      expect(encoded).toEqual({ at: "2024-01-02T00:00:00.000Z" })
    }))

  it.effect("fails the stage, naming it, when the result does not match its schema", () =>
    Effect.gen(function*() {
      const stage = stageOf(() => Effect.succeed({ at: 42 }))
      const exit = yield* Effect.exit(runStageBody(stage, stageContext(stage, place(), silent)))
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit) && exit.cause._tag === "Fail") {
        expect(exit.cause.error).toBeInstanceOf(StageFailed)
        expect(exit.cause.error.message).toContain("s: result does not match its schema")
      } else throw new Error("expected a failure")
    }))

  it.effect("makes a path the context refuses the stage's failure, not a crash", () =>
    Effect.gen(function*() {
      const stage = stageOf((ctx) => Effect.sync(() => ctx.output("../escape")))
      const exit = yield* Effect.exit(runStageBody(stage, stageContext(stage, place(), silent)))
      expect(Exit.isFailure(exit) && exit.cause._tag === "Fail").toBe(true)
    }))

  it("encodes the stage's own errors by their schema and anything else by its message", () => {
    expect(encodeFailure(new StageFailed({ stage: "s", reason: "no" }))).toEqual({
      _tag: "StageFailed",
      stage: "s",
      reason: "no"
    })
    expect(encodeFailure(new Error("disk on fire"))).toEqual({ _tag: "Unknown", message: "disk on fire" })
    expect(encodeFailure(undefined)).toBeNull()
  })
})

describe("recovery after a killed run", () => {
  const abandoned: ReadonlyArray<AbandonedExecution> = [
    { id: "a", stageId: "x", executor: "local", workerPid: null, workerIdentity: null },
    { id: "b", stageId: "y", executor: "slurm", workerPid: null, workerIdentity: null },
    { id: "c", stageId: "z", executor: "k8s", workerPid: null, workerIdentity: null }
  ]
  const recorder = (executor: string, seen: Array<string>): Recoverer => ({
    executor,
    recover: (rows) => Effect.sync(() => seen.push(...rows.map((r) => `${executor}:${r.id}`)))
  })

  it.effect("hands each executor's recoverer only the executions it recorded, the first of a name winning", () =>
    Effect.gen(function*() {
      const seen: Array<string> = []
      const shadowed: Array<string> = []
      yield* recoverAbandoned(abandoned, [
        recorder("slurm", seen),
        recorder("local", seen),
        recorder("slurm", shadowed)
      ])
      expect(seen).toEqual(["slurm:b", "local:a"])
      expect(shadowed).toEqual([])
    }))

  it.effect("asks the running executor first, then the recoverers composed at the top layer", () =>
    Effect.gen(function*() {
      const seen: Array<string> = []
      const executor = { recoverer: recorder("slurm", seen) } as unknown as ExecutorShape
      const alone = yield* recoverersFor(executor)
      expect(alone.map((r) => r.executor)).toEqual(["slurm"])
      const composed = yield* recoverersFor(executor).pipe(
        Effect.provideService(Recoverers, [recorder("local", seen), recorder("slurm", [])])
      )
      yield* recoverAbandoned(abandoned, composed)
      expect(seen).toEqual(["slurm:b", "local:a"])
    }))
})
