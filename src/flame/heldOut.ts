/**
 * Which samples FLAME-MoE held out, as Megatron-LM decides it: each split's sample order depends on
 * that split's target size (Megatron's train_valid_test_num_samples, megatron/training/training.py),
 * so evaluating "FLAME-MoE's held-out split" means building the splits at the sizes its runs asked for.
 */

/** Megatron-LM's default --eval-iters (FLAME-MoE's training passes none). */
export const defaultEvalIters = 100

/** The router-trace capture (scripts/empirical_analysis/modules/capture_step2.sh). */
export const traceCapture = { split: "95,0,5", evalIters: 25 } as const

export interface TrainingRun {
  readonly trainIters: number
  readonly globalBatchSize: number
  readonly evalInterval: number
}

/**
 * A training run's split sizes: train_iters x gbs; (train_iters // eval_interval + 1) x eval_iters x
 * gbs for validation; eval_iters x gbs for test.
 */
export const trainingSplitSamples = (run: TrainingRun, evalIters = defaultEvalIters) => ({
  train: run.trainIters * run.globalBatchSize,
  valid: (Math.floor(run.trainIters / run.evalInterval) + 1) * evalIters * run.globalBatchSize,
  test: evalIters * run.globalBatchSize
})

/** The trace capture's split sizes: its --split 95,0,5 builds no validation split. */
export const traceSplitSamples = (run: Omit<TrainingRun, "evalInterval">) => ({
  train: run.trainIters * run.globalBatchSize,
  valid: 0,
  test: traceCapture.evalIters * run.globalBatchSize
})
