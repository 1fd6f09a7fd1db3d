/**
 * Prefix fingerprints of a training run's checkpoints: a hash of exactly what determines the model
 * and optimizer state after step k, so that two runs which agree on it share that checkpoint.
 *
 * The state after k steps depends on the model, the data and its order, the batch sizes, the optimizer
 * settings, the initialisation seed, the worker that computed it, and the learning rate of each of the
 * k steps. Everything but the last is fixed for a run (its family). The rates are described, not
 * listed: the worker's WSD schedule (kernels/src/schedule.cpp) gives step i (1-based) the rate after
 * n = i - 1 scheduler steps,
 *   n <= W (W > 0):     maxLr * n / W                 (warm-up)
 *   n <= annealStart:   maxLr                         (constant)
 *   otherwise:          minLr + coeff(style, (n - annealStart) / wsdIters) * (maxLr - minLr)
 * with annealStart = trainIters - wsdIters. Steps 1..k use n = 0..k-1, so the anneal's settings matter
 * only when k - 1 > annealStart. Describing the rates so (warm-up, constant rate, and only then the
 * anneal) makes equal schedules hash equal however they were written: a warm-up fraction or the same
 * absolute warm-up, any trainIters and minLr before the anneal.
 */
import { canonicalJson } from "../engine/Fingerprint.ts"
import type { PrefixParts, StagePrefixes } from "../Stage.ts"
import { sha256Text } from "../store/ContentHasher.ts"
import type { WsdDecayStyle } from "./schema.ts"

/** The parts of a train stage's params the state depends on. */
export interface TrainingPrefixParams {
  readonly model: unknown
  readonly data: {
    readonly split: string
    readonly seed: number
    readonly splitSamples?: { readonly train: number; readonly valid: number; readonly test: number } | undefined
  }
  readonly globalBatchSize: number
  readonly microBatchSize: number
  readonly trainIters: number
  readonly lr: number
  readonly minLr: number
  readonly warmupFraction: number
  readonly warmupIters?: number | undefined
  readonly wsdDecayFraction: number
  readonly wsdDecayStyle?: WsdDecayStyle | undefined
  readonly weightDecay: number
  readonly clipGrad: number
  readonly seed: number
  readonly backend: string
}

/** The worker's schedule in iteration units, as kernels/src/schedule.h resolves it from the config. */
export interface WorkerSchedule {
  readonly maxLr: number
  readonly minLr: number
  /** Warm-up length in iterations; fractional when given as a fraction of trainIters. */
  readonly warmup: number
  readonly trainIters: number
  readonly wsdIters: number
  readonly style: WsdDecayStyle
}

export const workerSchedule = (p: TrainingPrefixParams): WorkerSchedule => ({
  maxLr: p.lr,
  minLr: p.minLr,
  // The same double the worker computes: warmupFraction * trainIters, or the absolute count.
  warmup: p.warmupIters ?? p.warmupFraction * p.trainIters,
  trainIters: p.trainIters,
  // FLAME-MoE's $((TRAIN_ITERS / 10)), as the worker's resolvedWsdIters (src/megatron/Arguments.ts).
  wsdIters: Math.floor(p.trainIters * p.wsdDecayFraction + 1e-9),
  style: p.wsdDecayStyle ?? "exponential"
})

/**
 * What the rates of steps 1..step are, canonically (see the module comment). The warm-up's rates are
 * listed, as the worker computes them (a product and a quotient, rounded the same in C++ and here):
 * a higher peak over a longer warm-up can give the same rates. The constant phase is its rate; the
 * anneal, which only some steps reach, is its settings, since its curve comes from each libm's pow.
 */
export const scheduleDescription = (s: WorkerSchedule, step: number): unknown => {
  const last = step - 1 // the scheduler steps taken before the last of these iterations
  const annealStart = s.trainIters - s.wsdIters
  const warmupRates: Array<number> = []
  // The worker's warm-up covers n <= W (W > 0): n = 0 .. floor(W).
  const warmupEnd = s.warmup > 0 ? Math.floor(s.warmup) : -1
  for (let n = 0; n <= Math.min(last, warmupEnd); n++) warmupRates.push(s.maxLr * n / s.warmup)
  const first = warmupEnd + 1
  const constant = first <= Math.min(last, annealStart)
  const anneal = Math.max(first, annealStart + 1) <= last
  return {
    warmup: warmupRates,
    ...(constant ? { peak: s.maxLr } : {}),
    ...(anneal
      ? { anneal: { start: annealStart, length: s.wsdIters, maxLr: s.maxLr, minLr: s.minLr, style: s.style } }
      : {})
  }
}

/**
 * The family: what is fixed for the whole run. The data order is part of it: Megatron's sample order
 * for a split depends on how many samples it is asked for (through the epochs it builds), which is
 * data.splitSamples when set and trainIters * globalBatchSize otherwise; runs of different lengths
 * share their order for certain only when they fix splitSamples.
 */
export const trainingFamily = (p: TrainingPrefixParams, parts: PrefixParts): string =>
  sha256Text(canonicalJson({
    kind: parts.kind,
    version: parts.version,
    worker: parts.workerHash,
    inputs: parts.inputs,
    backend: p.backend,
    model: p.model,
    data: {
      split: p.data.split,
      seed: p.data.seed,
      samples: p.data.splitSamples?.train ?? p.trainIters * p.globalBatchSize
    },
    globalBatchSize: p.globalBatchSize,
    microBatchSize: p.microBatchSize,
    weightDecay: p.weightDecay,
    clipGrad: p.clipGrad,
    seed: p.seed
  }))

export const trainingPrefixes = (
  p: TrainingPrefixParams,
  parts: PrefixParts,
  steps: Readonly<Record<string, number>>
): StagePrefixes => {
  const family = trainingFamily(p, parts)
  const schedule = workerSchedule(p)
  const memo = new Map<number, string>()
  return {
    family,
    total: p.trainIters,
    steps,
    at: (step) => {
      let hash = memo.get(step)
      if (hash === undefined) {
        hash = sha256Text(canonicalJson({ family, step, schedule: scheduleDescription(schedule, step) }))
        memo.set(step, hash)
      }
      return hash
    }
  }
}
