/**
 * Which iterations a run saves. Megatron saves at every multiple of --save-interval and once more when
 * training ends, unless the last iteration is itself a multiple (then that save is the same checkpoint).
 * For flame-moe-1.7b: 1100, 2200, ..., 11000 and 11029.
 */
export interface CheckpointPlan {
  readonly trainIters: number
  readonly saveInterval: number
  /** Further iterations to save at (where cool-down branches start), beside the interval's. */
  readonly saveIters?: ReadonlyArray<number> | undefined
}

export const checkpointSteps = ({ saveInterval, saveIters, trainIters }: CheckpointPlan): ReadonlyArray<number> => {
  if (!Number.isInteger(saveInterval) || saveInterval < 1) throw new RangeError(`saveInterval ${saveInterval}`)
  if (!Number.isInteger(trainIters) || trainIters < 1) throw new RangeError(`trainIters ${trainIters}`)
  const steps = new Set<number>()
  for (let it = saveInterval; it <= trainIters; it += saveInterval) steps.add(it)
  steps.add(trainIters)
  for (const it of saveIters ?? []) {
    if (!Number.isInteger(it) || it < 1 || it > trainIters) throw new RangeError(`saveIters ${it}`)
    steps.add(it)
  }
  return [...steps].sort((a, b) => a - b)
}

/** The interval checkpoints only (what the model card counts as "10 checkpoints per model"). */
export const intervalCheckpointSteps = (plan: CheckpointPlan): ReadonlyArray<number> =>
  checkpointSteps(plan).filter((it) => it % plan.saveInterval === 0)
