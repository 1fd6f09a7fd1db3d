/**
 * A ReportData as a suite and an ablation would produce it, with the analysis and fit documents computed
 * by the real code on synthetic traces and runs.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { writeSyntheticTraces } from "../../../bench/analysis/synthetic.ts"
import { expertCoactivation } from "../../../src/analysis/coactivation.ts"
import { loadBalance } from "../../../src/analysis/loadBalance.ts"
import { routerSaturation } from "../../../src/analysis/saturation.ts"
import { expertSpecialization } from "../../../src/analysis/specialization.ts"
import { trackSpecialization } from "../../../src/analysis/specializationTracking.ts"
import { fromRoot } from "../../../src/ProjectRoot.ts"
import type { ReportData, StageRecord } from "../../../src/report/model.ts"
import { tokenDecoderFromFile } from "../../../src/report/tokens.ts"
import { predictLoss } from "../../../src/scaling/law.ts"
import { publishedLaw } from "../../../src/scaling/published.ts"
import { fitAll } from "../../../stages/analysis/scalingFit.ts"

let n = 0
export const record = (stageId: string, kind: string, fields: Partial<StageRecord> = {}): StageRecord => ({
  stageId,
  kind,
  execution: {
    id: `exec-${String(++n).padStart(4, "0")}-${stageId.replace(/\W+/g, "")}`,
    runId: "run-0001",
    status: "succeeded",
    startedAt: 1_700_000_000_000 + n,
    endedAt: 1_700_000_001_000 + n,
    durationMs: 1000,
    workerHash: "f".repeat(64),
    host: "test"
  },
  environment: { gitCommit: "abc123", gitDirty: false },
  params: {},
  result: null,
  outputs: [{ name: "out", path: `artifacts/${stageId}/0/out`, hash: "0".repeat(64), size: 1 }],
  inputs: [],
  metrics: {},
  documents: {},
  ...fields
})

export const suiteData = (): ReportData => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fp-report-unit-"))
  // Two MoE layers after a dense first one, as FLAME-MoE: the traces store indices 1 and 2 (Megatron layers 2, 3).
  const o = { numTokens: 2 * 256, vocabSize: 200, numExperts: 64, topK: 6, numLayers: 2, seqLength: 256, seed: 3 }
  const file = (s: number) => path.join(dir, `t${s}.bin`)
  writeSyntheticTraces(o, {
    final: file(30),
    earlier: [{ file: file(10), change: 0.6 }, { file: file(20), change: 0.3 }]
  })
  const checkpoints = [10, 20, 30].map((step) => ({ step, file: file(step) }))
  const counts = (step: number) => path.join(dir, `counts-${step}.bin`)
  const scale = "s-tiny"
  const records: Array<StageRecord> = [
    record(`train/${scale}`, "train", {
      params: { scale, globalBatchSize: 8, model: { seqLength: 64 } },
      result: { activeParams: 230_000 },
      metrics: {
        loss: Array.from({ length: 30 }, (_, i) => [i + 1, 8 - i * 0.1] as const),
        lr: Array.from({ length: 30 }, (_, i) => [i + 1, 3e-3] as const)
      }
    }),
    ...[10, 20, 30].map((step) =>
      record(`eval/${scale}/${step}`, "eval", {
        result: {
          scale,
          step,
          validationLoss: 8 - step / 10,
          validationPerplexity: Math.exp(8 - step / 10),
          tasks: { piqa: { acc: { value: 0.5 + step / 100 }, accNorm: { value: 0.52 } } }
        }
      })
    ),
    record(`analysis/${scale}/saturation`, "analysis/router-saturation", {
      documents: { "saturation.json": routerSaturation({ scale, checkpoints, ks: [6, 4, 2, 1] }) }
    }),
    record(`analysis/${scale}/load-balance`, "analysis/load-balance", {
      documents: { "load-balance.json": loadBalance({ scale, checkpoints }) }
    }),
    // Co-activation and specialization at every checkpoint (as the pipelines compute them): the report
    // shows the final ones, and all of them over training.
    ...[10, 20, 30].flatMap((step) => {
      const id = (analysis: string) => `analysis/${scale}/${analysis}${step === 30 ? "" : `/${step}`}`
      return [
        record(id("coactivation"), "analysis/expert-coactivation", {
          documents: { "coactivation.json": expertCoactivation({ scale, step, file: file(step) }) }
        }),
        record(id("specialization"), "analysis/expert-specialization", {
          documents: {
            "specialization.json": expertSpecialization({
              scale,
              step,
              file: file(step),
              vocabSize: 200,
              minOccurrences: 2,
              topTokens: 3,
              countsFile: counts(step)
            })
          }
        })
      ]
    }),
    record(`analysis/${scale}/specialization-tracking`, "analysis/specialization-tracking", {
      documents: {
        "specialization-tracking.json": trackSpecialization({
          scale,
          checkpoints: [10, 20, 30].map((step) => ({ step, file: counts(step) })),
          minOccurrences: 5,
          topTokens: 2
        })
      }
    }),
    record("source/tokenizer", "source")
  ]
  fs.rmSync(dir, { recursive: true, force: true })
  return {
    title: "suite <test>",
    pipeline: "scaling-suite",
    preset: "tiny",
    generatedAt: "2024-01-01T00:00:00Z",
    workspace: "/ws",
    records,
    missing: [],
    tokens: tokenDecoderFromFile(fromRoot("fixtures", "tokenizer", "tokenizer.json"), "source/tokenizer")
  }
}

export const ablationData = (): ReportData => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fp-report-unit-"))
  const shapes = [{ shape: "d256-l6", N: 3e7 }, { shape: "d512-l9", N: 9e7 }, { shape: "d1024-l12", N: 3e8 }]
  const budgets = [1e18, 3e18, 1e19]
  const inputs: Record<string, string> = {}
  const records: Array<StageRecord> = []
  for (const b of budgets) {
    for (const s of shapes) {
      const D = b / (6 * s.N)
      const point = {
        point: `${s.shape}-${b.toExponential(0)}`,
        shape: s.shape,
        flopsBudget: b,
        iteration: 10,
        activeParams: s.N,
        totalParams: 3 * s.N,
        tokens: D,
        flops: b,
        loss: predictLoss(publishedLaw, s.N, D),
        perplexity: 20,
        samples: 64
      }
      const file = path.join(dir, `${point.point}.json`)
      fs.writeFileSync(file, JSON.stringify(point))
      inputs[`point:${point.point}`] = file
      records.push(record(`ablation/val-loss/${point.point}`, "ablation/validation-loss", { result: point }))
    }
  }
  const grid = { logE: [0, 1], logA: [5], alpha: [0.5], logB: [15], beta: [0.5, 1] } as const
  const fit = fitAll({ methods: ["raw", "log"], delta: 1e-3, grid, curvePoints: 11 }, inputs)
  records.push(record("ablation/fit", "scaling/fit", { documents: { "fit.json": fit } }))
  fs.rmSync(dir, { recursive: true, force: true })
  return {
    title: "ablation",
    pipeline: "ablation",
    preset: "tiny",
    generatedAt: "2024-01-01T00:00:00Z",
    workspace: "/ws",
    records,
    missing: [{ stageId: "ablation/report", kind: "report", reason: "never run" }]
  }
}
