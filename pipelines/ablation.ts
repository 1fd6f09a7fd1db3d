/**
 * ablation: FLAME-MoE's scaling-law ablation (scripts/ablation/search.sh): 16 model shapes x 5 FLOPs
 * budgets, each trained once and evaluated on the validation split, then L(N, D) fitted to the 80 points.
 *
 *   source/kernels/* -> compile-kernels ──────────────┐
 *   source/corpus/* -> tokenize/<shard> (blended) ─────────┼-> ablation/train/<run> -> ablation/val-loss/<run> ─┐
 *   source/tokenizer ──────────────────────────────────┘                                                   ├-> ablation/fit
 *                                                                                                          └-> ablation/report
 *
 * The cool-down grid (docs/cooldown.md, src/scaling/cooldownRuns.ts) measures the same 80 points with the
 * WSD method of Hägele et al. 2024: per shape one constant-rate run to the latest anneal start, saving a
 * checkpoint at every budget's anneal start, and per budget a branch that continues from that checkpoint
 * (the engine seeds it there: its params agree with the constant-rate run on every step before its
 * anneal) and anneals over the last 10% of its iterations:
 *
 *   ablation/cooldown/train/<shape>-const -> ablation/cooldown/train/<run> (x5, seeded at a_i)
 *     -> ablation/cooldown/val-loss/<run> -> ablation/cooldown/fit -> ablation/cooldown/report
 *
 * The data and worker stages have the suite's ids and params: in a workspace shared with scaling-suite
 * they are the same cached stages. Presets: `full` is the published grid (DCLM, pythia's tokenizer,
 * GPUs; --config corpus=... tokenizer=...); `tiny` keeps the 80-run graph with every model and run
 * shrunk (src/scaling/ablationRuns.ts) to run on 2 CPU cores from the bundled corpus in minutes;
 * `cooldown` is the cool-down grid alone at the published sizes; `cooldown-tiny` is the cool-down grid at
 * the tiny sizes beside the tiny grid, whose stages are the `tiny` preset's (same ids and params, so the
 * same cached stages in a shared workspace), and a report that compares the two fits.
 */
import { Effect } from "effect"
import { PipelineError } from "../src/domain/Errors.ts"
import * as Pipeline from "../src/Pipeline.ts"
import type { AblationRun } from "../src/scaling/ablationRuns.ts"
import { defaultTinyAblationOptions, publishedAblationRuns, tinyAblationRuns } from "../src/scaling/ablationRuns.ts"
import type { CooldownShape } from "../src/scaling/cooldownRuns.ts"
import { ablationStageIds, cooldownShapes, cooldownStageIds } from "../src/scaling/cooldownRuns.ts"
import type { ExecutorInfo, OutputRef, StageNode } from "../src/Stage.ts"
import { node, ref } from "../src/Stage.ts"
import { reportNode } from "../stages/analysis/report.ts"
import { pointInputName, scalingFit } from "../stages/analysis/scalingFit.ts"
import { validationLoss } from "../stages/analysis/validationLoss.ts"
import { type DataPaths, dataPathsFor, missingSettings, requireData, tokenizerVocabSize } from "../stages/flame/data.ts"
import { dataAndWorker, dataModeOf, datasetInputs } from "../stages/flame/dataStages.ts"
import { flameModel, type ModelParams } from "../stages/flame/model.ts"
import { workerOutput } from "../stages/kernels.ts"
import { checkpointName, train } from "../stages/train.ts"

type Paths = Pick<DataPaths, "corpus" | "tokenizer">

/** The model sizes a preset trains: the cool-down presets take theirs from `tiny` and `full`. */
type Size = "tiny" | "full"

const sizeOf = (preset: string): Size => (preset === "tiny" || preset === "cooldown-tiny" ? "tiny" : "full")

/** Which grids a preset trains. */
const gridsOf = (preset: string): { readonly grid: boolean; readonly cooldown: boolean } => ({
  grid: preset !== "cooldown",
  cooldown: preset === "cooldown" || preset === "cooldown-tiny"
})

const pathsFor = (size: Size, config: Readonly<Record<string, string>>): Paths => {
  const { corpus, tokenizer } = dataPathsFor(size, config)
  return { corpus, tokenizer }
}

const idSuffixOf = (size: Size): string => (size === "tiny" ? defaultTinyAblationOptions.idSuffix : "")

const runsFor = (size: Size, paths: Paths): ReadonlyArray<AblationRun> =>
  size === "tiny"
    ? tinyAblationRuns({ ...defaultTinyAblationOptions, vocabSize: tokenizerVocabSize(paths.tokenizer) })
    : publishedAblationRuns()

export const trainId = (run: AblationRun) => ablationStageIds.train(run.id)
export const valLossId = (run: AblationRun) => ablationStageIds.valLoss(run.id)
export const cooldownTrainId = (runId: string) => cooldownStageIds.train(runId)
export const cooldownValLossId = (run: AblationRun) => cooldownStageIds.valLoss(run.id)

const modelOf = (run: AblationRun): ModelParams =>
  flameModel({
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

/** What every train and validation stage of a preset shares. */
interface Shared {
  readonly size: Size
  readonly data: Readonly<Record<string, OutputRef>>
  readonly worker: OutputRef
}

// Tiny models train faster one per core than two threads per model.
const threadsOf = (size: Size) => (size === "tiny" ? 1 : 16)

const valSamplesOf = (size: Size) => (size === "tiny" ? 128 : 1024)

const validationNode = (id: string, run: AblationRun, checkpoint: OutputRef, s: Shared): StageNode =>
  node(validationLoss, {
    id,
    params: {
      point: run.id,
      flopsBudget: run.flopsBudget,
      shape: run.shape,
      model: modelOf(run),
      valSamples: valSamplesOf(s.size)
    },
    inputs: { checkpoint, ...s.data, worker: s.worker }
  })

/** The grid: every run trained from scratch with FLAME-MoE's schedule, then validated. */
const gridNodes = (runs: ReadonlyArray<AblationRun>, s: Shared): Array<StageNode> =>
  runs.flatMap((run) => [
    node(train, {
      id: trainId(run),
      params: {
        scale: run.id,
        model: modelOf(run),
        globalBatchSize: run.globalBatchSize,
        microBatchSize: run.microBatchSize,
        trainIters: run.trainIters,
        // Only the final checkpoint is evaluated: one save per run keeps 80 runs' storage in bounds.
        saveInterval: run.trainIters,
        lr: run.lr,
        minLr: run.minLr,
        threads: threadsOf(s.size)
      },
      inputs: { ...s.data, worker: s.worker }
    }),
    validationNode(valLossId(run), run, ref(trainId(run), checkpointName(run.trainIters)), s)
  ])

/**
 * One shape's cool-down runs: the constant-rate run first (the engine waits for it before seeding a
 * branch from a checkpoint it is about to write), then the branches, then their validations.
 */
const cooldownNodesOf = (c: CooldownShape, s: Shared): Array<StageNode> => {
  const run = c.template
  // Everything that decides the state up to a branch's anneal start is the same in all six runs of the
  // shape, the label included: only trainIters, the anneal and the saves differ.
  const common = {
    scale: `${c.shape}-cooldown${idSuffixOf(s.size)}`,
    model: modelOf(run),
    data: { split: "90,5,5", seed: 1234, splitSamples: c.splitSamples },
    globalBatchSize: run.globalBatchSize,
    microBatchSize: run.microBatchSize,
    lr: run.lr,
    minLr: run.minLr,
    warmupIters: c.warmupIters,
    threads: threadsOf(s.size)
  }
  return [
    node(train, {
      id: cooldownTrainId(c.constId),
      params: {
        ...common,
        trainIters: c.constTrainIters,
        // Constant to the end: every step is a step of each branch's constant phase.
        wsdDecayFraction: 0,
        // Only where the branches start: saveInterval = trainIters adds nothing but the final one.
        saveInterval: c.constTrainIters,
        saveIters: c.saveIters
      },
      inputs: { ...s.data, worker: s.worker }
    }),
    ...c.branches.map(({ run: branch }) =>
      node(train, {
        id: cooldownTrainId(branch.id),
        params: {
          ...common,
          trainIters: branch.trainIters,
          wsdDecayFraction: c.decayFraction,
          saveInterval: branch.trainIters
        },
        inputs: { ...s.data, worker: s.worker }
      })
    ),
    ...c.branches.map(({ run: branch }) =>
      validationNode(
        cooldownValLossId(branch),
        branch,
        ref(cooldownTrainId(branch.id), checkpointName(branch.trainIters)),
        s
      )
    )
  ]
}

const fitNode = (id: string, points: ReadonlyArray<readonly [AblationRun, string]>): StageNode =>
  node(scalingFit, {
    id,
    inputs: Object.fromEntries(points.map(([run, stage]) => [pointInputName(run.id), ref(stage, "val.json")]))
  })

const build = (
  preset: string,
  config: Readonly<Record<string, string>>,
  executor: ExecutorInfo
): ReadonlyArray<StageNode> => {
  const size = sizeOf(preset)
  const grids = gridsOf(preset)
  const paths = pathsFor(size, config)
  const mode = dataModeOf(config, "blend") ?? "blend"
  const nodes = dataAndWorker(paths, executor, mode)
  const shared: Shared = {
    size,
    data: datasetInputs(paths.corpus, mode),
    worker: ref("compile-kernels", workerOutput(executor))
  }
  const runs = runsFor(size, paths)
  if (grids.grid) nodes.push(...gridNodes(runs, shared))
  const shapes = grids.cooldown
    ? cooldownShapes(runs, {
      idSuffix: idSuffixOf(size),
      // The validation stages build their split at valSamples; no stage here reads the test split.
      heldOut: { valid: valSamplesOf(size), test: 0 }
    })
    : []
  for (const shape of shapes) nodes.push(...cooldownNodesOf(shape, shared))
  if (grids.grid) nodes.push(fitNode(ablationStageIds.fit, runs.map((run) => [run, valLossId(run)] as const)))
  if (grids.cooldown) {
    nodes.push(fitNode(
      cooldownStageIds.fit,
      shapes.flatMap((shape) => shape.branches.map(({ run }) => [run, cooldownValLossId(run)] as const))
    ))
  }
  nodes.push(reportNode({
    // The cool-down presets' report has its own id: beside the tiny grid's, both stay cached.
    id: grids.cooldown ? cooldownStageIds.report : ablationStageIds.report,
    title: grids.cooldown
      ? `FLAME-MoE scaling-law ablation, cool-down grid (${preset})`
      : `FLAME-MoE scaling-law ablation (${preset})`,
    pipeline: "ablation",
    preset,
    nodes
  }))
  return nodes
}

/** Preflight: the data (and GPUs at the published sizes) the preset's size needs. */
const preflight = (preset: string, config: Readonly<Record<string, string>>, executor: ExecutorInfo) => {
  const size = sizeOf(preset)
  if (size === preset) return requireData("ablation", preset, pathsFor(size, config), executor)
  const missing = missingSettings(pathsFor(size, config), { needsGpus: size === "full", executor })
  return missing.length === 0 ? Effect.void : Effect.fail(
    new PipelineError({
      pipeline: "ablation",
      reason: `preset ${preset} cannot run yet; set:\n  - ${missing.join("\n  - ")}\n` +
        "(or run the tiny sizes: flame-pipe run ablation --preset cooldown-tiny)"
    })
  )
}

export default Pipeline.define({
  name: "ablation",
  description: "the scaling-law ablation: 16 shapes x 5 FLOPs budgets, validation losses and the L(N, D) fit",
  presets: {
    tiny: "the 80-run grid shrunk to run on 2 CPU cores from the bundled corpus",
    full: "the published grid: DCLM, pythia's tokenizer, GPUs",
    cooldown: "the cool-down grid at the published sizes: per shape one constant-rate run, five annealed branches",
    "cooldown-tiny": "the cool-down grid at the tiny sizes beside the tiny grid, and a report comparing their fits"
  },
  defaultPreset: "full",
  preflight: ({ config, executor, preset }) => preflight(preset, config, executor),
  build: ({ config, executor, preset }) => build(preset, config, executor)
})
