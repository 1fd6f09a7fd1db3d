/**
 * What every FLAME-MoE pipeline does with one checkpoint: evaluate it (validation loss on the
 * held-out split FLAME-MoE's run built, the harness tasks) and trace its router (on the test split of
 * FLAME-MoE's capture run). Built here once, so the suite and the release pipeline give them the same
 * ids and params.
 */
import { architecture, training } from "../../src/flame/architecture.ts"
import type { TrainingRun } from "../../src/flame/heldOut.ts"
import { traceCapture, traceSplitSamples, trainingSplitSamples } from "../../src/flame/heldOut.ts"
import type { Scale } from "../../src/flame/schema.ts"
import type { OutputRef, StageNode } from "../../src/Stage.ts"
import { node, ref } from "../../src/Stage.ts"
import { reportNode } from "../analysis/report.ts"
import { evaluate } from "../eval.ts"
import { suiteTable } from "../suiteTable.ts"
import { trace } from "../trace.ts"
import { flameModel, type ModelParams } from "./model.ts"

/** A published scale's model: its widths and depth with FLAME-MoE's constants. */
export const publishedModel = (s: Scale): ModelParams =>
  flameModel({
    vocabSize: architecture.paddedVocabSize,
    hiddenSize: s.hiddenSize,
    numLayers: s.numLayers,
    numAttentionHeads: architecture.numAttentionHeads,
    ffnHiddenSize: s.ffnHiddenSize,
    moeFfnHiddenSize: s.moeFfnHiddenSize,
    numExperts: architecture.numExperts,
    topK: architecture.routerTopK,
    sharedExpertSize: architecture.sharedExpertWidthFactor * s.moeFfnHiddenSize,
    moeLayers: s.moeLayerFreq,
    seqLength: training.seqLength
  })

export interface CheckpointStagesOptions {
  readonly scale: string
  readonly step: number
  readonly model: ModelParams
  /** How the model was trained: decides which samples are held out. */
  readonly run: TrainingRun
  readonly checkpoint: OutputRef
  /** The dataset inputs (stages/flame/dataStages.ts datasetInputs). */
  readonly data: Readonly<Record<string, OutputRef>>
  readonly worker: OutputRef
  readonly preset: string
}

/** eval/<scale>/<step> and trace/<scale>/<step> of one checkpoint. */
export const checkpointStages = (o: CheckpointStagesOptions): ReadonlyArray<StageNode> => [
  node(evaluate, {
    id: `eval/${o.scale}/${o.step}`,
    params: {
      scale: o.scale,
      step: o.step,
      model: o.model,
      valSamples: o.preset === "tiny" ? 16 : 1024,
      data: { split: "90,5,5", seed: 1234, splitSamples: trainingSplitSamples(o.run) }
    },
    inputs: { checkpoint: o.checkpoint, ...o.data, worker: o.worker, requests: ref("eval/requests", "requests") }
  }),
  node(trace, {
    id: `trace/${o.scale}/${o.step}`,
    params: {
      scale: o.scale,
      step: o.step,
      model: o.model,
      data: { split: traceCapture.split, seed: 1234, splitSamples: traceSplitSamples(o.run) }
    },
    inputs: { checkpoint: o.checkpoint, ...o.data, worker: o.worker }
  })
]

/**
 * suite/table over each scale's final evaluation, then suite/report over `nodes` and the table: how a
 * FLAME-MoE pipeline ends. The report decodes token ids with the run's tokenizer (source/tokenizer).
 */
export const tableAndReport = (o: {
  /** [scale, final step] for each scale in the table. */
  readonly finals: ReadonlyArray<readonly [string, number]>
  readonly nodes: ReadonlyArray<StageNode>
  readonly title: string
  readonly pipeline: string
  readonly preset: string
}): ReadonlyArray<StageNode> => {
  const table = node(suiteTable, {
    id: "suite/table",
    params: { scales: o.finals.map(([scale]) => scale) },
    inputs: Object.fromEntries(o.finals.map(([scale, step]) => [scale, ref(`eval/${scale}/${step}`, "eval.json")]))
  })
  const nodes = [...o.nodes, table]
  const tokenizer = o.nodes.some((n) => n.id === "source/tokenizer")
    ? { tokenizer: ref("source/tokenizer", "tokenizer.json") }
    : {}
  return [
    table,
    reportNode({ id: "suite/report", title: o.title, pipeline: o.pipeline, preset: o.preset, nodes, ...tokenizer })
  ]
}
