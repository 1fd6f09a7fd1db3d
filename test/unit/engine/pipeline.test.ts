import { it } from "@effect/vitest"
import { Effect, Either, Schema } from "effect"
import { describe, expect } from "vitest"
import { parseOverride, parseOverrides, resolve } from "../../../src/Pipeline.ts"
import type { PipelineDefinition } from "../../../src/Pipeline.ts"
import { define, node, ref } from "../../../src/Stage.ts"

const leaf = define({
  kind: "test/leaf",
  version: "1",
  params: Schema.Struct({
    size: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 4 }),
    model: Schema.optionalWith(Schema.Struct({ hidden: Schema.Int }), { default: () => ({ hidden: 8 }) })
  }),
  outputs: () => ({ out: "file" }),
  result: Schema.Struct({}),
  run: () => Effect.succeed({})
})

const pipelineOf = (build: PipelineDefinition["build"]): PipelineDefinition => ({
  name: "t",
  description: "",
  presets: { default: "" },
  defaultPreset: "default",
  build
})

describe("Pipeline.resolve", () => {
  it.effect("orders stages topologically and decodes params with defaults", () =>
    Effect.gen(function*() {
      const resolved = yield* resolve(
        pipelineOf(() => [
          node(leaf, { id: "c", inputs: { x: ref("b", "out") } }),
          node(leaf, { id: "b", inputs: { x: ref("a", "out") } }),
          node(leaf, { id: "a", params: { size: 2 } })
        ]),
        {}
      )
      expect(resolved.stages.map((s) => s.id)).toEqual(["a", "b", "c"])
      expect(resolved.byId.get("a")!.encodedParams).toEqual({ size: 2, model: { hidden: 8 } })
      expect(resolved.downstream.get("a")).toEqual(["b"])
    }))

  it.effect("applies --set overrides, including nested keys and stage ids containing dots", () =>
    Effect.gen(function*() {
      const resolved = yield* resolve(
        pipelineOf(() => [node(leaf, { id: "train/flame-moe-1.7b" }), node(leaf, { id: "train/flame-moe-1" })]),
        { overrides: ["train/flame-moe-1.7b.size=9", "train/flame-moe-1.model.hidden=32"] }
      )
      expect(resolved.byId.get("train/flame-moe-1.7b")!.encodedParams).toEqual({ size: 9, model: { hidden: 8 } })
      expect(resolved.byId.get("train/flame-moe-1")!.encodedParams).toEqual({ size: 4, model: { hidden: 32 } })
    }))

  it.effect("names the stage and key of an invalid or unknown param", () =>
    Effect.gen(function*() {
      const bad = yield* Effect.flip(resolve(pipelineOf(() => [node(leaf, { id: "a" })]), { overrides: ["a.size=-1"] }))
      expect(bad.message).toContain("stage a, param 'size'")
      const unknown = yield* Effect.flip(
        resolve(pipelineOf(() => [node(leaf, { id: "a" })]), { overrides: ["a.sise=1"] })
      )
      expect(unknown.message).toContain("param 'sise'")
      const nested = yield* Effect.flip(
        resolve(pipelineOf(() => [node(leaf, { id: "a" })]), { overrides: ["a.model.hidden=x"] })
      )
      expect(nested.message).toContain("param 'model.hidden'")
    }))

  it.effect("rejects duplicate ids, unknown inputs, unknown outputs and unknown presets", () =>
    Effect.gen(function*() {
      expect(
        (yield* Effect.flip(resolve(pipelineOf(() => [node(leaf, { id: "a" }), node(leaf, { id: "a" })]), {}))).message
      )
        .toContain("duplicate stage id 'a'")
      expect(
        (yield* Effect.flip(resolve(pipelineOf(() => [node(leaf, { id: "a", inputs: { x: ref("zz", "out") } })]), {})))
          .message
      )
        .toContain("input 'x' refers to unknown stage 'zz'")
      expect(
        (yield* Effect.flip(
          resolve(
            pipelineOf(() => [node(leaf, { id: "a" }), node(leaf, { id: "b", inputs: { x: ref("a", "nope") } })]),
            {}
          )
        ))
          .message
      ).toContain("'a' declares outputs: out")
      expect((yield* Effect.flip(resolve(pipelineOf(() => []), { preset: "huge" }))).message).toContain(
        "unknown preset 'huge'"
      )
    }))

  it.effect("names the stages of a cycle", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(resolve(
        pipelineOf(() => [
          node(leaf, { id: "root" }),
          node(leaf, { id: "x", inputs: { a: ref("root", "out"), b: ref("z", "out") } }),
          node(leaf, { id: "y", inputs: { a: ref("x", "out") } }),
          node(leaf, { id: "z", inputs: { a: ref("y", "out") } })
        ]),
        {}
      ))
      expect(error.message).toMatch(/cycle between stages: (x -> y -> z -> x|y -> z -> x -> y|z -> x -> y -> z)/)
    }))
})

describe("parseOverride", () => {
  it("parses JSON values and falls back to strings", () => {
    const ids = ["a", "a.b"]
    expect(parseOverride("p", "a.b.lr=1e-3", ids)).toEqual(Either.right({ stage: "a.b", key: "lr", value: 0.001 }))
    expect(parseOverride("p", "a.name=hello", ids)).toEqual(Either.right({ stage: "a", key: "name", value: "hello" }))
    expect(parseOverride("p", "a.list=[1,2]", ids)).toEqual(Either.right({ stage: "a", key: "list", value: [1, 2] }))
    expect(Either.isLeft(parseOverride("p", "a.nokey", ids))).toBe(true)
  })
})

describe("parseOverrides", () => {
  const ids = ["train/flame-moe-38m", "train/flame-moe-1.7b", "eval/flame-moe-1.7b/11000", "eval/flame-moe-1.7b/5500"]
  it("applies a glob to every stage it matches, keeping dotted keys", () => {
    expect(parseOverrides("p", "train/*.megatron.nodes=2", ids)).toEqual(
      Either.right([
        { stage: "train/flame-moe-38m", key: "megatron.nodes", value: 2 },
        { stage: "train/flame-moe-1.7b", key: "megatron.nodes", value: 2 }
      ])
    )
    expect(parseOverrides("p", "eval/flame-moe-1.7b/*.backend=cpu", ids)).toEqual(
      Either.right([
        { stage: "eval/flame-moe-1.7b/11000", key: "backend", value: "cpu" },
        { stage: "eval/flame-moe-1.7b/5500", key: "backend", value: "cpu" }
      ])
    )
    expect(Either.map(parseOverrides("p", "eval/**.backend=cpu", ids), (o) => o.length)).toEqual(Either.right(2))
  })
  it("plain ids behave as before; a glob matching nothing is an error naming the stages", () => {
    expect(parseOverrides("p", "train/flame-moe-1.7b.lr=1e-3", ids)).toEqual(
      Either.right([{ stage: "train/flame-moe-1.7b", key: "lr", value: 0.001 }])
    )
    const none = parseOverrides("p", "ablation/*.lr=1", ids)
    expect(Either.isLeft(none) && none.left.message).toMatch(/no stage matches \(stages: train\/flame-moe-38m/)
  })
})
