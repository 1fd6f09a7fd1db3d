/**
 * Megatron's learning-rate schedule with --lr-decay-style WSD (warmup, stable, decay), as FLAME-MoE trains.
 *
 * Megatron counts scheduler steps in samples (one iteration advances it by the global batch size), derives
 * warmup steps = lrWarmupFraction * decay steps (decay iters default to trainIters), and steps the scheduler
 * once with 0 before training: so iteration n (1-based) runs with the lr of n - 1 completed iterations, and
 * iteration 1 uses the warmup start lr, 0. We compute in samples, like Megatron, so that boundary comparisons
 * (e.g. 110 <= 110.29 iterations for flame-moe-1.7b) happen on the same floating-point numbers.
 */
import { training } from "./architecture.ts"
import type { Training } from "./schema.ts"

export interface WsdSchedule {
  readonly maxLr: number
  readonly minLr: number
  readonly trainIters: number
  readonly globalBatchSize: number
  readonly warmupFraction: number
  /**
   * An absolute warm-up in iterations (Megatron's --lr-warmup-iters), which replaces the fraction:
   * runs of different lengths then share their warm-up, and so every step before their anneal.
   */
  readonly warmupIters?: number
  /** lr-wsd-decay-iters: the length of the decay phase, in iterations. */
  readonly wsdIters: number
  readonly decayStyle: Training["lrWsdDecayStyle"]
}

/** The schedule FLAME-MoE used for a run of `trainIters` iterations (wsdIters = floor(trainIters / 10)). */
export const flameWsdSchedule = (trainIters: number, t: Training = training): WsdSchedule => ({
  maxLr: t.lr,
  minLr: t.minLr,
  trainIters,
  globalBatchSize: t.globalBatchSize,
  warmupFraction: t.lrWarmupFraction,
  wsdIters: Math.floor(trainIters / t.lrWsdDecayDivisor),
  decayStyle: t.lrWsdDecayStyle
})

/** Warmup length in iterations (fractional, e.g. 110.29 for 11029 iterations). */
export const warmupIters = (s: WsdSchedule): number => s.warmupIters ?? s.warmupFraction * s.trainIters

/** First iteration count (completed iterations) of the decay phase. */
export const annealStart = (s: WsdSchedule): number => s.trainIters - s.wsdIters

/** The lr after `completed` optimizer steps (Megatron's get_lr with num_steps = completed * batch). */
export const lrAfterSteps = (s: WsdSchedule, completed: number): number => {
  const numSteps = completed * s.globalBatchSize
  const decaySteps = s.trainIters * s.globalBatchSize
  // Megatron: lr_warmup_iters * global_batch_size, or lr_warmup_fraction * lr_decay_steps.
  const warmupSteps = s.warmupIters !== undefined ? s.warmupIters * s.globalBatchSize : s.warmupFraction * decaySteps
  const wsdDecaySteps = s.wsdIters * s.globalBatchSize
  if (warmupSteps > 0 && numSteps <= warmupSteps) return s.maxLr * numSteps / warmupSteps
  if (numSteps > decaySteps) return s.minLr
  const annealStartSteps = decaySteps - wsdDecaySteps
  let coeff = 1
  if (numSteps > annealStartSteps) {
    const ratio = (numSteps - annealStartSteps) / wsdDecaySteps
    coeff = s.decayStyle === "linear"
      ? 1 - ratio
      : s.decayStyle === "cosine"
      ? 0.5 * (Math.cos(Math.PI * ratio) + 1)
      : s.decayStyle === "minus_sqrt"
      ? 1 - Math.sqrt(ratio)
      : 2 * Math.pow(0.5, ratio) - 1
  }
  return s.minLr + coeff * (s.maxLr - s.minLr)
}

/** The lr used by iteration `iteration` (1-based, as Megatron logs it). */
export const lrAtIteration = (s: WsdSchedule, iteration: number): number => lrAfterSteps(s, iteration - 1)
