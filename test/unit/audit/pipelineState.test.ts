import { it } from "@effect/vitest"
import { Effect } from "effect"
import { describe, expect } from "vitest"
import toy from "../../../pipelines/toy.ts"
import { checkExecution } from "../../../src/audit/Completeness.ts"
import { walkPipeline } from "../../../src/audit/PipelineState.ts"
import { resolve } from "../../../src/Pipeline.ts"
import { FakeLineage } from "./fakeLineage.ts"

const pipeline = Effect.runSync(resolve(toy, {}))
const variantParams = { generate: { count: 50, seed: 7, max: 1000 } }

describe("a pipeline's results in lineage", () => {
  it.effect("are the executions with the pipeline's params and upstream hashes, not the latest ones", () =>
    Effect.gen(function*() {
      const lineage = new FakeLineage(pipeline)
      const first = lineage.run({ id: "r1" })
      lineage.run({ id: "r2", params: variantParams, salt: "variant" })
      const states = yield* walkPipeline(pipeline, lineage.records())
      expect(states.map((s) => s._tag === "Resolved" && s.execution.id)).toEqual(
        pipeline.stages.map((s) => first.get(s.id)!.id)
      )
      expect(states.every((s) => s._tag === "Resolved" && s.matchedBy === "params-and-inputs")).toBe(true)
    }))

  it.effect("follow an upstream that re-executed to identical bytes (early cutoff)", () =>
    Effect.gen(function*() {
      const lineage = new FakeLineage(pipeline)
      const first = lineage.run({ id: "r1" })
      // generate re-executes (say its output went missing) with the same bytes; the rest is reused.
      const second = lineage.run({ id: "r2", execute: ["generate"], reuse: first })
      const states = yield* walkPipeline(pipeline, lineage.records())
      const byStage = new Map(states.map((s) => [s.stage.id, s._tag === "Resolved" ? s.execution.id : null]))
      expect(byStage.get("generate")).toBe(second.get("generate")!.id)
      expect(byStage.get("report")).toBe(first.get("report")!.id)
    }))

  it.effect("prefer an exact fingerprint, and only count executions before a bound", () =>
    Effect.gen(function*() {
      const lineage = new FakeLineage(pipeline)
      const first = lineage.run({ id: "r1" })
      const bound = lineage.tick()
      lineage.run({ id: "r2", salt: "later" })
      const states = yield* walkPipeline(pipeline, lineage.records(), { before: bound })
      expect(states.find((s) => s.stage.id === "sum")).toMatchObject({ execution: { id: first.get("sum")!.id } })
      const exact = yield* walkPipeline(pipeline, lineage.records(), {
        fingerprintOf: (stage) => Effect.succeed(first.get(stage.id)!.fingerprint)
      })

      expect(exact.every((s) => s._tag === "Resolved" && s.matchedBy === "fingerprint")).toBe(true)
    }))

  it.effect("say why a stage has no match, and what is blocked behind it", () =>
    Effect.gen(function*() {
      const lineage = new FakeLineage(pipeline)
      lineage.run({ id: "r1", params: variantParams })
      const states = yield* walkPipeline(pipeline, lineage.records())
      const generate = states.find((s) => s.stage.id === "generate")!
      expect(generate._tag === "Unresolved" && generate.reason).toContain("params differ: count 50 -> 100")
      const report = states.find((s) => s.stage.id === "report")!
      expect(report).toMatchObject({ _tag: "Unresolved", upstream: "sum" })
    }))
})

describe("an execution's records", () => {
  it("are consistent as a run writes them", () => {
    const lineage = new FakeLineage(pipeline)
    lineage.run({ id: "r1" })
    const records = lineage.records()
    for (const e of records.executions.values()) {
      expect(checkExecution(e, records, pipeline.byId.get(e.stageId))).toEqual([])
    }
  })

  it("betray an edited row, an input hash that is not its artifact's, and missing records", () => {
    const lineage = new FakeLineage(pipeline)
    const run = lineage.run({ id: "r1" })
    const records = lineage.records()
    const filter = { ...run.get("filter")!, params: { threshold: 11 } }
    const [edited] = checkExecution(filter, records, pipeline.byId.get("filter"))
    expect(edited).toMatchObject({ check: "lineage", code: "fingerprint-mismatch", stage: "filter" })
    expect(edited!.message).toContain("threshold 10 -> 11")

    const sum = run.get("sum")!
    const rehashed = { ...sum, inputHashes: { ...sum.inputHashes, shard0: "f00" } }
    const codes = checkExecution(rehashed, records, pipeline.byId.get("sum")).map((f) => f.code)
    expect(codes).toEqual(["fingerprint-mismatch", "input-hash-mismatch"])

    const report = { ...run.get("report")!, environmentId: null }
    const withoutArtifacts = {
      ...records,
      artifactsByExecution: new Map([...records.artifactsByExecution].filter(([id]) => id !== report.id))
    }
    expect(checkExecution(report, withoutArtifacts, pipeline.byId.get("report")).map((f) => f.code)).toEqual([
      "no-environment",
      "output-not-recorded"
    ])
  })
})
