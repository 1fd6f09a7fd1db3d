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
import { evaluate } from "../eval.ts"
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
