/**
 * Which iterations a run saves. Megatron saves at every multiple of --save-interval and once more when
 * training ends, unless the last iteration is itself a multiple (then that save is the same checkpoint).
 * For flame-moe-1.7b: 1100, 2200, ..., 11000 and 11029.
 */
export interface CheckpointPlan {
  readonly trainIters: number
  readonly saveInterval: number
}

export const checkpointSteps = ({ saveInterval, trainIters }: CheckpointPlan): ReadonlyArray<number> => {
  if (!Number.isInteger(saveInterval) || saveInterval < 1) throw new RangeError(`saveInterval ${saveInterval}`)
  if (!Number.isInteger(trainIters) || trainIters < 1) throw new RangeError(`trainIters ${trainIters}`)
  const steps: Array<number> = []
  for (let it = saveInterval; it <= trainIters; it += saveInterval) steps.push(it)
  if (trainIters % saveInterval !== 0) steps.push(trainIters)
  return steps
}

/** The interval checkpoints only (what the model card counts as "10 checkpoints per model"). */
export const intervalCheckpointSteps = (plan: CheckpointPlan): ReadonlyArray<number> =>
  checkpointSteps(plan).filter((it) => it % plan.saveInterval === 0)
