import { Effect, Exit } from "effect"
import { describe, expect, it } from "vitest"
import ablation from "../../../pipelines/ablation.ts"
import suite from "../../../pipelines/scaling-suite.ts"
import { ablationGrid } from "../../../src/flame/ablationGrid.ts"
import { resolve } from "../../../src/Pipeline.ts"
import { publishedAblationRuns, tinyAblationRuns } from "../../../src/scaling/ablationRuns.ts"

const resolved = (pipeline: typeof ablation, preset: string, gpus = 0) =>
  Effect.runSync(resolve(pipeline, { preset, executor: { gpus } }))

describe("the ablation runs", () => {
  it("published: the 80 grid points as they are", () => {
    const runs = publishedAblationRuns()
    expect(runs).toHaveLength(80)
    runs.forEach((r, i) => {
      expect(r.trainIters).toBe(ablationGrid[i]!.trainIters)
      expect(r.hiddenSize).toBe(ablationGrid[i]!.hiddenSize)
      expect(r.microBatchSize).toBe(ablationGrid[i]!.microBatchSize)
    })
    expect(runs[0]!.id).toBe("d256-l6-1e18")
    expect(new Set(runs.map((r) => r.id)).size).toBe(80)
  })

  it("tiny: every published shape stays distinct and keeps its budgets' iteration ratios", () => {
    const runs = tinyAblationRuns()
    expect(new Set(runs.map((r) => r.id)).size).toBe(80)
    expect(new Set(runs.map((r) => `${r.hiddenSize}x${r.numLayers}`)).size).toBe(16)
    expect(Math.min(...runs.map((r) => r.trainIters))).toBe(2)
    for (const r of runs) {
      // Every head has an even dimension (RoPE), SwiGLU widths are even, MoE layers follow one dense layer.
      expect((r.hiddenSize / r.numAttentionHeads) % 2).toBe(0)
      expect(r.ffnHiddenSize % 2).toBe(0)
      expect(r.moeLayerFreq).toBe(`[0]*1+[1]*${r.numLayers - 1}`)
      expect(r.numExperts).toBe(64)
      expect(r.routerTopK).toBe(6)
    }
    for (const shape of new Set(runs.map((r) => r.shape))) {
      const mine = runs.filter((r) => r.shape === shape)
      const published = ablationGrid.filter((p) => `d${p.hiddenSize}-l${p.numLayers}` === shape)
      mine.forEach((r, i) => {
        const expected = (mine[mine.length - 1]!.trainIters * published[i]!.trainIters) /
          published[published.length - 1]!.trainIters
        // Rounding to whole iterations: within half an iteration plus 3% of the count.
        expect(Math.abs(r.trainIters - expected), `${r.id}`).toBeLessThanOrEqual(0.5 + 0.03 * expected + 1)
      })
    }
    // About 20k iterations of 128 tokens in all: what keeps the preset to a couple of minutes on 2 cores.
    expect(runs.reduce((n, r) => n + r.trainIters, 0)).toBeLessThan(25_000)
  })
})

describe("the ablation pipeline", () => {
  it("tiny: 80 trainings and validations, the fit over all 80 and a report", () => {
    const p = resolved(ablation, "tiny")
    const ids = p.stages.map((s) => s.id)
    expect(ids.filter((id) => id.startsWith("ablation/train/"))).toHaveLength(80)
    expect(ids.filter((id) => id.startsWith("ablation/val-loss/"))).toHaveLength(80)
    const fit = p.byId.get("ablation/fit")!
    expect(Object.keys(fit.inputs)).toHaveLength(80)
    const report = p.byId.get("ablation/report")!
    expect(Object.keys(report.inputs)).toEqual(
      expect.arrayContaining(["ablation/fit", "ablation/train/d256-l6-1e18-tiny"])
    )
    // Only the final checkpoint is saved and validated.
    const train = p.byId.get("ablation/train/d2048-l18-3e19-tiny")!
    expect(Object.keys(train.outputs)).toEqual(["iter_0000060"])
    expect(p.byId.get("ablation/val-loss/d2048-l18-3e19-tiny")!.inputs.checkpoint).toEqual({
      stage: "ablation/train/d2048-l18-3e19-tiny",
      output: "iter_0000060"
    })
  })

  it("shares its data and worker stages with the suite: same ids, definitions, params and inputs", () => {
    const a = resolved(ablation, "tiny")
    const s = resolved(suite, "tiny")
    const shared = a.stages.filter((st) => s.byId.has(st.id))
    expect(shared.map((st) => st.id)).toEqual(
      expect.arrayContaining(["compile-kernels", "source/kernels/src", "source/tokenizer", "tokenize/dclm-tiny-0000"])
    )
    for (const st of shared) {
      const other = s.byId.get(st.id)!
      expect(st.definition, st.id).toBe(other.definition)
      expect(st.encodedParams, st.id).toEqual(other.encodedParams)
      expect(st.inputs, st.id).toEqual(other.inputs)
    }
  })

  it("full: refuses to start without the corpus, tokenizer and GPUs, naming each", () => {
    const exit = Effect.runSyncExit(resolve(ablation, { preset: "full", executor: { gpus: 0 } }))
    expect(Exit.isFailure(exit)).toBe(true)
    const message = Exit.isFailure(exit) ? String(exit.cause) : ""
    expect(message).toContain("--config corpus=")
    expect(message).toContain("--config tokenizer=")
    expect(message).toContain("GPUs")
  })
})
