/**
 * ablation: FLAME-MoE's scaling-law ablation (scripts/ablation/search.sh): 16 model shapes x 5 FLOPs
 * budgets, each trained once and evaluated on the validation split, then L(N, D) fitted to the 80 points.
 *
 *   source/kernels/* -> compile-kernels ──────────────┐
 *   source/corpus/* -> tokenize/<shard> (blended) ─────────┼-> ablation/train/<run> -> ablation/val-loss/<run> ─┐
 *   source/tokenizer ──────────────────────────────────┘                                                   ├-> ablation/fit
 *                                                                                                          └-> ablation/report
 *
 * The data and worker stages have the suite's ids and params: in a workspace shared with scaling-suite
 * they are the same cached stages. Presets: `full` is the published grid (DCLM, pythia's tokenizer,
 * GPUs; --config corpus=... tokenizer=...); `tiny` keeps the 80-run graph with every model and run
 * shrunk (src/scaling/ablationRuns.ts) to run on 2 CPU cores from the bundled corpus in minutes.
 */
import * as Pipeline from "../src/Pipeline.ts"
import type { AblationRun } from "../src/scaling/ablationRuns.ts"
import { defaultTinyAblationOptions, publishedAblationRuns, tinyAblationRuns } from "../src/scaling/ablationRuns.ts"
import type { ExecutorInfo, StageNode } from "../src/Stage.ts"
import { node, ref } from "../src/Stage.ts"
import { reportNode } from "../stages/analysis/report.ts"
import { pointInputName, scalingFit } from "../stages/analysis/scalingFit.ts"
import { validationLoss } from "../stages/analysis/validationLoss.ts"
import { type DataPaths, dataPathsFor, requireData, tokenizerVocabSize } from "../stages/flame/data.ts"
import { dataAndWorker, dataModeOf, datasetInputs } from "../stages/flame/dataStages.ts"
import { flameModel } from "../stages/flame/model.ts"
import { workerOutput } from "../stages/kernels.ts"
import { checkpointName, train } from "../stages/train.ts"

type Paths = Pick<DataPaths, "corpus" | "tokenizer">

const pathsFor = (preset: string, config: Readonly<Record<string, string>>): Paths => {
  const { corpus, tokenizer } = dataPathsFor(preset, config)
  return { corpus, tokenizer }
}

const runsFor = (preset: string, paths: Paths): ReadonlyArray<AblationRun> =>
  preset === "tiny"
    ? tinyAblationRuns({ ...defaultTinyAblationOptions, vocabSize: tokenizerVocabSize(paths.tokenizer) })
    : publishedAblationRuns()

export const trainId = (run: AblationRun) => `ablation/train/${run.id}`
export const valLossId = (run: AblationRun) => `ablation/val-loss/${run.id}`

const build = (
  preset: string,
  config: Readonly<Record<string, string>>,
  executor: ExecutorInfo
): ReadonlyArray<StageNode> => {
  const paths = pathsFor(preset, config)
  const tiny = preset === "tiny"
  const mode = dataModeOf(config, "blend") ?? "blend"
  const nodes = dataAndWorker(paths, executor, mode)
  const data = datasetInputs(paths.corpus, mode)
  const worker = ref("compile-kernels", workerOutput(executor))
  const runs = runsFor(preset, paths)
  for (const run of runs) {
    const model = flameModel({
      vocabSize: run.paddedVocabSize,
      hiddenSize: run.hiddenSize,
      numLayers: run.numLayers,
      numAttentionHeads: run.numAttentionHeads,
      ffnHiddenSize: run.ffnHiddenSize,
      moeFfnHiddenSize: run.moeFfnHiddenSize,
      numExperts: run.numExperts,
      topK: run.routerTopK,
      sharedExpertSize: run.sharedExpertSize,
      moeLayers: run.moeLayerFreq,
      seqLength: run.seqLength
    })
    nodes.push(
      node(train, {
        id: trainId(run),
        params: {
          scale: run.id,
          model,
          globalBatchSize: run.globalBatchSize,
          microBatchSize: run.microBatchSize,
          trainIters: run.trainIters,
          // Only the final checkpoint is evaluated: one save per run keeps 80 runs' storage in bounds.
          saveInterval: run.trainIters,
          lr: run.lr,
          minLr: run.minLr,
          // Tiny models train faster one per core than two threads per model.
          threads: tiny ? 1 : 16
        },
        inputs: { ...data, worker }
      }),
      node(validationLoss, {
        id: valLossId(run),
        params: {
          point: run.id,
          flopsBudget: run.flopsBudget,
          shape: run.shape,
          model,
          valSamples: tiny ? 128 : 1024
        },
        inputs: { checkpoint: ref(trainId(run), checkpointName(run.trainIters)), ...data, worker }
      })
    )
  }
  nodes.push(node(scalingFit, {
    id: "ablation/fit",
    inputs: Object.fromEntries(runs.map((run) => [pointInputName(run.id), ref(valLossId(run), "val.json")]))
  }))
  nodes.push(reportNode({
    id: "ablation/report",
    title: `FLAME-MoE scaling-law ablation (${preset})`,
    pipeline: "ablation",
    preset,
    nodes
  }))
  return nodes
}

export default Pipeline.define({
  name: "ablation",
  description: "the scaling-law ablation: 16 shapes x 5 FLOPs budgets, validation losses and the L(N, D) fit",
  presets: {
    tiny: "the 80-run grid shrunk to run on 2 CPU cores from the bundled corpus",
    full: "the published grid: DCLM, pythia's tokenizer, GPUs"
  },
  defaultPreset: "full",
  preflight: ({ config, executor, preset }) => requireData("ablation", preset, pathsFor(preset, config), executor),
  build: ({ config, executor, preset }) => build(preset, config, executor)
})
