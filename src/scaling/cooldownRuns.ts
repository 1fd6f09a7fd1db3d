/**
 * The cool-down variant of the ablation (the WSD method of Hägele et al. 2024, "Scaling Laws and
 * Compute-Optimal Training Beyond Fixed Training Durations"): instead of training each of a shape's five
 * budgets from scratch, one constant-rate run per shape is trained to the latest anneal start, and each
 * budget is a branch that continues from the constant-rate run's checkpoint at its own anneal start and
 * only anneals.
 *
 * A branch at budget i (trainIters T_i, anneal length w_i = floor(0.1 T_i), anneal start a_i = T_i - w_i)
 * and the constant-rate run use the same learning rate on every step up to a_i when they share the
 * absolute warm-up W, the peak and floor rates and the data order; then the state after a_i steps is the
 * same, and the engine starts the branch from the constant-rate run's checkpoint at a_i (a checkpoint
 * whose prefix matches). This module is the arithmetic of that plan: W, a_i, the constant-rate run's
 * length and checkpoints, the split sizes that fix the data order, and the tokens each approach trains.
 */
import { training } from "../flame/architecture.ts"
import type { AblationRun } from "./ablationRuns.ts"

/** Megatron's train_valid_test_num_samples, as the worker's data.splitSamples takes it. */
export interface SplitSamples {
  readonly train: number
  readonly valid: number
  readonly test: number
}

export interface CooldownOptions {
  /** Appended to the constant-rate run's id, as the grid's runs carry it ("-tiny" for the tiny preset). */
  readonly idSuffix: string
  /** The anneal's share of a branch's iterations: FLAME-MoE's wsdDecayFraction. */
  readonly decayFraction: number
  /** FLAME-MoE's warm-up, a fraction of trainIters, which the shared absolute warm-up is derived from. */
  readonly warmupFraction: number
  /** The validation and test split sizes the train stages declare (they decide nothing in training). */
  readonly heldOut: { readonly valid: number; readonly test: number }
}

export const defaultCooldownOptions: CooldownOptions = {
  idSuffix: "",
  decayFraction: 0.1,
  warmupFraction: training.lrWarmupFraction,
  heldOut: { valid: 1024, test: 0 }
}

export interface CooldownBranch {
  /** The grid's run at this budget: the branch trains to its trainIters with its model and batch. */
  readonly run: AblationRun
  /** floor(trainIters x decayFraction): iterations of the anneal. */
  readonly annealIters: number
  /** trainIters - annealIters: the step the branch leaves the constant-rate run at. */
  readonly annealStart: number
}

export interface CooldownShape {
  /** The published shape, e.g. "d512-l9". */
  readonly shape: string
  /** The constant-rate run's id: <shape>-const<suffix>. */
  readonly constId: string
  /** The grid's run every field of the constant-rate run except its length comes from (the shortest). */
  readonly template: AblationRun
  /** The branches' wsdDecayFraction (the constant-rate run's is 0). */
  readonly decayFraction: number
  /** The absolute warm-up every run of the shape shares. */
  readonly warmupIters: number
  /** The constant-rate run's length: the latest anneal start. */
  readonly constTrainIters: number
  /** Where the constant-rate run saves: every anneal start, ascending. */
  readonly saveIters: ReadonlyArray<number>
  /** The split sizes of every run of the shape: the same train size, hence the same sample order. */
  readonly splitSamples: SplitSamples
  /** One per budget, in the grid's order. */
  readonly branches: ReadonlyArray<CooldownBranch>
}

/**
 * The anneal's length as the worker resolves it (kernels/src/config.cpp resolvedWsdIters, Megatron's
 * --lr-wsd-decay-iters as FLAME-MoE computed it): the epsilon keeps a product like 30 x 0.1 =
 * 3.0000000000000004, or one a hair under an integer, on the integer it stands for.
 */
export const annealIterations = (trainIters: number, decayFraction: number): number =>
  Math.floor(trainIters * decayFraction + 1e-9)

/**
 * The warm-up every run of a shape shares: FLAME-MoE's 1% of the shortest branch, rounded up.
 *
 * Warm-up protects the first updates from a full step while Adam's moment estimates are still noise;
 * how many steps that takes depends on the model and batch, not on how long the run goes on, so one
 * absolute length serves every budget. Taking it from the shortest branch gives that branch FLAME-MoE's
 * warm-up (to a whole iteration), and keeps W at or below every anneal start (W < 0.01 T_min + 1 <= 0.9 T_min <= a_min <= a_i
 * for T_min >= 2, and W = a = 1 for T_min = 1), so that every branch's constant phase is the
 * constant-rate run's. 1% of the longest run instead would spend up to 30% of the smallest budget
 * warming up and bias its loss upwards. Rounding up keeps at least one step at the warm-up's starting
 * rate 0, as FLAME-MoE's fractional warm-up does for runs under 100 iterations (0.46 of an
 * iteration for the shortest published run still runs iteration 1 at lr 0).
 */
export const sharedWarmupIterations = (branchIters: ReadonlyArray<number>, warmupFraction: number): number => {
  if (branchIters.length === 0) throw new RangeError("a shape needs at least one branch")
  // The epsilon as in annealIterations: 300 x 0.01 must stay 3, not become 4.
  return Math.ceil(Math.min(...branchIters) * warmupFraction - 1e-9)
}

/** The fields a shape's runs must agree on for one constant-rate run to stand for all of them. */
const sharedFields = [
  "shape",
  "hiddenSize",
  "ffnHiddenSize",
  "moeFfnHiddenSize",
  "numLayers",
  "moeLayerFreq",
  "numAttentionHeads",
  "numExperts",
  "routerTopK",
  "sharedExpertSize",
  "paddedVocabSize",
  "seqLength",
  "globalBatchSize",
  "microBatchSize",
  "lr",
  "minLr"
] as const satisfies ReadonlyArray<keyof AblationRun>

const cooldownShape = (shape: string, runs: ReadonlyArray<AblationRun>, o: CooldownOptions): CooldownShape => {
  const template = runs.reduce((a, b) => (b.trainIters < a.trainIters ? b : a))
  for (const run of runs) {
    for (const field of sharedFields) {
      if (run[field] !== template[field]) {
        throw new Error(
          `shape ${shape}: run ${run.id} has ${field} ${String(run[field])}, run ${template.id} ${
            String(template[field])
          }; a constant-rate run can only stand for runs that differ in length`
        )
      }
    }
  }
  const branches = runs.map((run) => {
    const annealIters = annealIterations(run.trainIters, o.decayFraction)
    return { run, annealIters, annealStart: run.trainIters - annealIters }
  })
  const saveIters = [...new Set(branches.map((b) => b.annealStart))].sort((a, b) => a - b)
  const longest = Math.max(...runs.map((r) => r.trainIters))
  const warmupIters = sharedWarmupIterations(runs.map((r) => r.trainIters), o.warmupFraction)
  if (warmupIters > saveIters[0]!) {
    // Holds for FLAME-MoE's fractions; other options could put a branch's anneal inside the warm-up.
    throw new Error(
      `shape ${shape}: the warm-up of ${warmupIters} iterations outlasts the anneal start ${saveIters[0]}`
    )
  }
  return {
    shape,
    constId: `${shape}-const${o.idSuffix}`,
    template,
    decayFraction: o.decayFraction,
    warmupIters,
    constTrainIters: saveIters[saveIters.length - 1]!,
    saveIters,
    // The worker orders a split's samples by its target size: without one train size for the shape, a
    // branch of T_i iterations would draw its data in another order than the constant-rate run.
    splitSamples: { train: longest * template.globalBatchSize, valid: o.heldOut.valid, test: o.heldOut.test },
    branches
  }
}

/** The grid's runs grouped by shape (in the order shapes first appear), each with its cool-down plan. */
export const cooldownShapes = (
  runs: ReadonlyArray<AblationRun>,
  options: Partial<CooldownOptions> = {}
): ReadonlyArray<CooldownShape> => {
  const o = { ...defaultCooldownOptions, ...options }
  const byShape = new Map<string, Array<AblationRun>>()
  for (const run of runs) {
    const list = byShape.get(run.shape)
    if (list) list.push(run)
    else byShape.set(run.shape, [run])
  }
  return [...byShape].map(([shape, members]) => cooldownShape(shape, members, o))
}

// ---- tokens ------------------------------------------------------------------------------------------

export const tokensPerIteration = (run: Pick<AblationRun, "globalBatchSize" | "seqLength">): number =>
  run.globalBatchSize * run.seqLength

/** Iterations the grid trains for a shape: every budget from scratch, sum_i T_i. */
export const gridIterations = (s: CooldownShape): number => s.branches.reduce((n, b) => n + b.run.trainIters, 0)

/** Iterations the cool-down grid trains for a shape: the constant-rate run, then each anneal: max_i a_i + sum_i w_i. */
export const cooldownIterations = (s: CooldownShape): number =>
  s.branches.reduce((n, b) => n + b.annealIters, s.constTrainIters)

export interface PlannedTokens {
  readonly grid: number
  readonly cooldown: number
}

/** The tokens both approaches plan to train, over all shapes. */
export const plannedTokens = (shapes: ReadonlyArray<CooldownShape>): PlannedTokens =>
  shapes.reduce(
    (sum, s) => ({
      grid: sum.grid + gridIterations(s) * tokensPerIteration(s.template),
      cooldown: sum.cooldown + cooldownIterations(s) * tokensPerIteration(s.template)
    }),
    { grid: 0, cooldown: 0 }
  )

/** What a train stage's params say about its share of the plan. */
export interface TrainPlanParams {
  readonly trainIters: number
  readonly wsdDecayFraction: number
}

/**
 * Iterations a cool-down train stage is planned to train itself: all of them for the constant-rate run
 * (no anneal), only the anneal for a branch, which the plan seeds from the constant-rate run at its
 * anneal start.
 */
export const plannedIterations = (p: TrainPlanParams): number =>
  p.wsdDecayFraction === 0 ? p.trainIters : annealIterations(p.trainIters, p.wsdDecayFraction)

/** Iterations an execution trained: from the step it was seeded at (absent: from step 0) to its end. */
export const trainedIterations = (trainIters: number, seedIteration: number | undefined): number =>
  trainIters - (seedIteration ?? 0)

// ---- stage ids ---------------------------------------------------------------------------------------

/** The ablation's stage ids, shared by the pipeline and the report sections that tell the two grids apart. */
export const ablationStageIds = {
  train: (runId: string) => `ablation/train/${runId}`,
  valLoss: (runId: string) => `ablation/val-loss/${runId}`,
  fit: "ablation/fit",
  report: "ablation/report"
} as const

export const cooldownStageIds = {
  prefix: "ablation/cooldown/",
  train: (runId: string) => `ablation/cooldown/train/${runId}`,
  valLoss: (runId: string) => `ablation/cooldown/val-loss/${runId}`,
  fit: "ablation/cooldown/fit",
  report: "ablation/cooldown/report"
} as const

export const isGridTrainStage = (stageId: string): boolean => stageId.startsWith(ablationStageIds.train(""))
export const isCooldownStage = (stageId: string): boolean => stageId.startsWith(cooldownStageIds.prefix)
export const isCooldownTrainStage = (stageId: string): boolean => stageId.startsWith(cooldownStageIds.train(""))
