import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import toy from "../../../pipelines/toy.ts"
import { NotFound } from "../../../src/domain/Errors.ts"
import { findRoots, retain } from "../../../src/gc/Retention.ts"
import { resolve } from "../../../src/Pipeline.ts"
import { PipelineRegistry } from "../../../src/pipeline/Registry.ts"
import { FakeLineage } from "../audit/fakeLineage.ts"

/** A fake lineage of the toy pipeline, to record runs into. */
const freshLineage = Effect.map(resolve(toy, {}), (pipeline) => new FakeLineage(pipeline))
const registry = Layer.succeed(PipelineRegistry, { names: () => ["toy"], load: () => Effect.succeed(toy) })
const noRegistry = Layer.succeed(PipelineRegistry, {
  names: () => [],
  load: (name) => Effect.fail(new NotFound({ what: "pipeline", name }))
})
const variant = { generate: { count: 50, seed: 7, max: 1000 } }

const keptBy = (lineage: FakeLineage, layer = registry, lockHeld = false) => {
  const records = lineage.records()
  return Effect.map(
    Effect.provide(findRoots(records, { lockHeld }), layer),
    (roots) => ({ roots, kept: retain(records, roots).artifacts })
  )
}

const artifactsOf = (lineage: FakeLineage, runId: string) =>
  lineage.artifacts.filter((a) => a.executionId.startsWith(`${runId}:`)).map((a) => a.id).sort()

describe("retention", () => {
  it.effect("keeps what the latest successful run used, even when an older execution is what it reused", () =>
    Effect.gen(function*() {
      const lineage = yield* freshLineage
      const first = lineage.run({ id: "r1" })
      lineage.run({ id: "r2", overrides: { "generate.count": "50" }, params: variant, salt: "v" })
      // Back to the defaults: everything cached, nothing new recorded.
      lineage.run({ id: "r3", execute: [], reuse: first })
      const { kept } = yield* keptBy(lineage)
      expect([...kept.keys()].sort()).toEqual(artifactsOf(lineage, "r1"))
      expect([...kept.values()][0]).toMatch(/^latest successful run r3 of toy \(default\)$/)
    }))

  it.effect("keeps what runs after the latest success produced", () =>
    Effect.gen(function*() {
      const lineage = yield* freshLineage
      lineage.run({ id: "r1" })
      lineage.run({ id: "r2", params: variant, salt: "v", failAt: "sum" })
      const { kept } = yield* keptBy(lineage)
      // generate, filter and the squares succeeded in the failed run: not garbage.
      const r2 = lineage.artifacts.filter((a) => a.executionId.startsWith("r2:")).map((a) => a.id)
      expect(r2).toHaveLength(5)
      for (const id of r2) expect(kept.get(id)).toContain("produced by failed run r2")
    }))

  it.effect("keeps a pinned artifact and everything upstream of it, and nothing downstream", () =>
    Effect.gen(function*() {
      const lineage = yield* freshLineage
      const old = lineage.run({ id: "r1", params: variant, salt: "v" })
      lineage.run({ id: "r2" })
      lineage.pins.push({
        id: "p",
        executionId: null,
        artifactId: lineage.artifacts.find((a) => a.executionId === old.get("square/1")!.id)!.id,
        target: "square/1 of r1",
        note: "fig. 3",
        createdAt: 0
      })
      const { kept } = yield* keptBy(lineage)
      const keptOld = [...kept.keys()].filter((id) => id.startsWith("r1:")).map((id) => id.split(":")[1]!.split("/")[0])
      expect(keptOld.sort()).toEqual(["filter", "generate", "square"])
      expect(kept.get(`r1:filter/kept.json`)).toBe("pinned (fig. 3) as square/1 of r1")
    }))

  it.effect("keeps a running execution's inputs only while it is live", () =>
    Effect.gen(function*() {
      const lineage = yield* freshLineage
      const old = lineage.run({ id: "r1", params: variant, salt: "v" })
      lineage.run({ id: "r2" })
      const running = { ...old.get("report")!, id: "x", runId: "r1", status: "running" as const }
      lineage.executions.push(running)
      lineage.inputs.push({ executionId: "x", name: "total", artifactId: `${old.get("sum")!.id}/total.json` })
      expect((yield* keptBy(lineage, registry, true)).kept.get(`${old.get("sum")!.id}/total.json`)).toContain(
        "input of running execution x"
      )
      expect((yield* keptBy(lineage, registry, false)).kept.has(`${old.get("sum")!.id}/total.json`)).toBe(false)
      // A remote executor's running row is live whatever the local lock says.
      lineage.executions[lineage.executions.length - 1] = { ...running, executor: "slurm" }
      expect((yield* keptBy(lineage, registry, false)).kept.has(`${old.get("sum")!.id}/total.json`)).toBe(true)
    }))

  it.effect("keeps every execution of a pipeline it cannot resolve, and says so", () =>
    Effect.gen(function*() {
      const lineage = yield* freshLineage
      lineage.run({ id: "r1", params: variant, salt: "v" })
      lineage.run({ id: "r2" })
      const { kept, roots } = yield* keptBy(lineage, noRegistry)
      expect(kept.size).toBe(lineage.artifacts.length)
      expect(roots.warnings.join()).toContain("cannot resolve its pipeline now")
    }))
})
