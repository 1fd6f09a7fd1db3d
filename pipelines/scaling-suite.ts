/**
 * scaling-suite: the FLAME-MoE lifecycle for the seven published scales.
 *
 *   source/corpus/* -> tokenize/<shard> ───────────────────┐   (blended per shard as FLAME-MoE did)
 *   source/tokenizer ─────────────────────────────────────┤
 *   source/kernels/* -> compile-kernels ──────────────────┼-> train/<scale> -> checkpoints
 *                                                         ├-> eval/<scale>/<step>   (per checkpoint)
 *                                                         ├-> trace/<scale>/<step>  (per checkpoint)
 *                                                         │     └-> analysis/<scale>/{saturation,load-balance,coactivation,specialization}
 *                                                         │         coactivation and specialization also at every earlier checkpoint
 *                                                         │         (.../<step>), as FLAME-MoE's notebooks compute them, and
 *                                                         │         specialization-tracking over all of them
 *                                                         ├-> suite/table
 *                                                         └-> suite/report          (HTML: everything above)
 *
 * Presets: `full` is the published configuration (needs the DCLM corpus, pythia's tokenizer.json and
 * GPUs: --config corpus=DIR_OR_GLOB tokenizer=FILE [tasks=DIR]); `tiny` keeps the same stage graph
 * and model structure (64 experts, top-6 + shared, dense first layer, 10 checkpoints per model and
 * Megatron's extra final one) with
 * dimensions, vocabulary, sequence length and steps shrunk to run on 2 CPU cores from the bundled
 * corpus and tokenizer.
 *
 * Data is read as FLAME-MoE read it: `--data-path 1.0 <shard> 1.0 <shard> ...` with `--split 90,5,5`,
 * each shard split on its own and blended as Megatron-core does; validation loss on the validation
 * split built at the size FLAME-MoE's run asked for, traces on the test split of its capture run
 * (`--split 95,0,5 --eval-iters 25`). `--config data=merged` reads one merged dataset instead.
 */
import { Effect } from "effect"
import { PipelineError } from "../src/domain/Errors.ts"
import { training } from "../src/flame/architecture.ts"
import { checkpointSteps } from "../src/flame/checkpoints.ts"
import { scales } from "../src/flame/scales.ts"
import type { TinyOptions } from "../src/flame/tinyPreset.ts"
import { defaultTinyOptions, tinyScales } from "../src/flame/tinyPreset.ts"
import * as Pipeline from "../src/Pipeline.ts"
import type { ExecutorInfo, StageNode } from "../src/Stage.ts"
import { node, ref } from "../src/Stage.ts"
import { routingAnalysisNodes } from "../stages/analysis/routing.ts"
import { evalRequests } from "../stages/eval.ts"
import { checkpointStages, publishedModel, tableAndReport } from "../stages/flame/checkpointStages.ts"
import { dataPathsFor, requireData, tokenizerVocabSize } from "../stages/flame/data.ts"
import { dataAndWorker, dataModeOf, datasetInputs } from "../stages/flame/dataStages.ts"
import { type ModelParams, tinyModel } from "../stages/flame/model.ts"
import { workerOutput } from "../stages/kernels.ts"
import { source } from "../stages/source.ts"
import { train } from "../stages/train.ts"

/** The tiny preset's shrink, tuned so the whole suite runs on 2 cores in a few minutes. */
export const tinyOptions: TinyOptions = defaultTinyOptions

interface SuiteScale {
  readonly id: string
  readonly model: ModelParams
  readonly globalBatchSize: number
  readonly microBatchSize: number
  readonly trainIters: number
  readonly saveInterval: number
  readonly evalInterval: number
  readonly lr: number
  readonly minLr: number
  /**
   * Every checkpoint Megatron saves, its extra final one included (FLAME-MoE evaluates ITER=11029 and
   * takes it as 100% in its saturation plots): the last is the suite table's row and the reference.
   */
  readonly evalSteps: ReadonlyArray<number>
  readonly threads: number
}

const tinySuite = (tokenizer: string): ReadonlyArray<SuiteScale> =>
  tinyScales({ ...tinyOptions, vocabSize: tokenizerVocabSize(tokenizer) }).map((t) => ({
    id: t.id,
    model: tinyModel(t),
    globalBatchSize: t.globalBatchSize,
    microBatchSize: t.microBatchSize,
    trainIters: t.trainIters,
    saveInterval: t.saveInterval,
    evalInterval: t.evalInterval,
    // 20 to 60 steps move a model little at FLAME-MoE's 3e-4: the tiny runs use 10x the rates (same WSD shape).
    lr: 10 * training.lr,
    minLr: 10 * training.minLr,
    evalSteps: checkpointSteps(t),
    threads: 2
  }))

const fullSuite = (): ReadonlyArray<SuiteScale> =>
  scales.map((s) => ({
    id: s.id,
    model: publishedModel(s),
    globalBatchSize: training.globalBatchSize,
    microBatchSize: s.microBatchSize,
    trainIters: s.trainIters,
    saveInterval: s.saveInterval,
    evalInterval: s.evalInterval,
    lr: training.lr,
    minLr: training.minLr,
    evalSteps: checkpointSteps(s),
    threads: 16
  }))

const build = (
  preset: string,
  config: Readonly<Record<string, string>>,
  executor: ExecutorInfo
): ReadonlyArray<StageNode> => {
  const paths = dataPathsFor(preset, config)
  const mode = dataModeOf(config, "blend") ?? "blend"
  const suite = preset === "tiny" ? tinySuite(paths.tokenizer) : fullSuite()
  const nodes: Array<StageNode> = [
    ...dataAndWorker(paths, executor, mode),
    node(source, { id: "source/tasks", params: { path: paths.tasks, kind: "dir", name: "tasks" } }),
    node(evalRequests, {
      id: "eval/requests",
      // The tiny preset scores the first 8 documents of each fixture task, as lm-eval's --limit 8 would.
      params: preset === "tiny" ? { limit: 8 } : {},
      inputs: { tokenizer: ref("source/tokenizer", "tokenizer.json"), tasks: ref("source/tasks", "tasks") }
    })
  ]
  const worker = ref("compile-kernels", workerOutput(executor))
  const data = datasetInputs(paths.corpus, mode)

  for (const scale of suite) {
    nodes.push(node(train, {
      id: `train/${scale.id}`,
      params: {
        scale: scale.id,
        model: scale.model,
        globalBatchSize: scale.globalBatchSize,
        microBatchSize: scale.microBatchSize,
        trainIters: scale.trainIters,
        saveInterval: scale.saveInterval,
        lr: scale.lr,
        minLr: scale.minLr,
        threads: scale.threads
      },
      inputs: { ...data, worker }
    }))
    const run = {
      trainIters: scale.trainIters,
      globalBatchSize: scale.globalBatchSize,
      evalInterval: scale.evalInterval
    }
    for (const step of scale.evalSteps) {
      const checkpoint = ref(`train/${scale.id}`, `iter_${String(step).padStart(7, "0")}`)
      nodes.push(
        ...checkpointStages({ scale: scale.id, step, model: scale.model, run, checkpoint, data, worker, preset })
      )
    }
    nodes.push(...routingAnalysisNodes({
      scale: scale.id,
      steps: scale.evalSteps,
      traceStage: (step) => `trace/${scale.id}/${step}`,
      vocabSize: scale.model.vocabSize,
      // The tiny traces hold 1024 tokens: a token seen 3 times is already a frequent one there.
      minOccurrences: preset === "tiny" ? 3 : 10,
      everyCheckpoint: true
    }))
  }
  nodes.push(...tableAndReport({
    finals: suite.map((s) => [s.id, s.evalSteps[s.evalSteps.length - 1]!]),
    nodes,
    title: `FLAME-MoE scaling suite (${preset})`,
    pipeline: "scaling-suite",
    preset
  }))
  return nodes
}

export default Pipeline.define({
  name: "scaling-suite",
  description: "train, checkpoint, evaluate and trace the seven FLAME-MoE scales",
  presets: {
    tiny: "the seven-scale graph shrunk to run on 2 CPU cores from the bundled corpus",
    full: "the published configuration: DCLM, pythia's tokenizer, GPUs"
  },
  defaultPreset: "full",
  preflight: ({ config, executor, preset }) =>
    dataModeOf(config, "blend") === undefined
      ? Effect.fail(
        new PipelineError({
          pipeline: "scaling-suite",
          reason: `--config data=${config.data}: expected blend (FLAME-MoE's per-shard blend) or merged`
        })
      )
      : requireData("scaling-suite", preset, dataPathsFor(preset, config), executor),
  build: ({ config, executor, preset }) => build(preset, config, executor)
})
