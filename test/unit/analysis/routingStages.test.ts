/**
 * The routing analyses as the suite places them: every checkpoint's co-activation and specialization, the
 * specialization tracking over every checkpoint's counts, and a report wired to all of them and to the
 * run's tokenizer.
 */
import { Effect, Either } from "effect"
import { describe, expect, it } from "vitest"
import suite from "../../../pipelines/scaling-suite.ts"
import { resolve } from "../../../src/Pipeline.ts"
import { routingAnalysisNodes } from "../../../stages/analysis/routing.ts"

const resolved = (preset: string) => {
  const result = Effect.runSync(Effect.either(resolve(suite, { preset, config: {}, executor: { gpus: 0 } })))
  if (Either.isLeft(result)) throw result.left
  return result.right
}

describe("routing analyses at every checkpoint", () => {
  it("add co-activation and specialization per earlier checkpoint and the tracking over all counts", () => {
    const nodes = routingAnalysisNodes({
      scale: "s",
      steps: [2, 4, 5],
      traceStage: (step) => `trace/s/${step}`,
      vocabSize: 128,
      everyCheckpoint: true
    })
    expect(nodes.map((n) => n.id).sort()).toEqual([
      "analysis/s/coactivation",
      "analysis/s/coactivation/2",
      "analysis/s/coactivation/4",
      "analysis/s/load-balance",
      "analysis/s/saturation",
      "analysis/s/specialization",
      "analysis/s/specialization-tracking",
      "analysis/s/specialization/2",
      "analysis/s/specialization/4"
    ])
    const tracking = nodes.find((n) => n.id === "analysis/s/specialization-tracking")!
    expect(tracking.params).toEqual({ scale: "s", steps: [2, 4, 5] })
    expect(tracking.inputs).toEqual({
      step2: { stage: "analysis/s/specialization/2", output: "specialization.bin" },
      step4: { stage: "analysis/s/specialization/4", output: "specialization.bin" },
      step5: { stage: "analysis/s/specialization", output: "specialization.bin" }
    })
    // Without everyCheckpoint, the final checkpoint alone: nothing to track.
    const finalOnly = routingAnalysisNodes({
      scale: "s",
      steps: [2, 4, 5],
      traceStage: (s) => `t/${s}`,
      vocabSize: 128
    })
    expect(finalOnly.map((n) => n.id)).not.toContain("analysis/s/specialization-tracking")
    expect(finalOnly).toHaveLength(4)
  })

  it("the tiny suite analyses every checkpoint of every scale, and its report reads them and the tokenizer", () => {
    const p = resolved("tiny")
    const ids = p.stages.map((s) => s.id)
    const report = p.byId.get("suite/report")!
    const scales = ids.filter((id) => id.startsWith("train/")).map((id) => id.slice("train/".length))
    expect(scales).toHaveLength(7)
    for (const scale of scales) {
      const traces = ids.filter((id) => id.startsWith(`trace/${scale}/`))
      expect(traces, scale).toHaveLength(11)
      for (const kind of ["coactivation", "specialization"]) {
        const own = ids.filter((id) =>
          id === `analysis/${scale}/${kind}` || id.startsWith(`analysis/${scale}/${kind}/`)
        )
        expect(own, `${scale} ${kind}`).toHaveLength(11)
        for (const id of own) expect(report.inputs[id], id).toBeDefined()
      }
      expect(report.inputs[`analysis/${scale}/specialization-tracking`]).toEqual({
        stage: `analysis/${scale}/specialization-tracking`,
        output: "specialization-tracking.json"
      })
    }
    expect(report.inputs.tokenizer).toEqual({ stage: "source/tokenizer", output: "tokenizer.json" })
    expect((report.encodedParams as { kinds: Record<string, string> }).kinds.tokenizer).toBe("source")
  })
})
