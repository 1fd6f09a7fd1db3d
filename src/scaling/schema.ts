/**
 * What the ablation stages write: one validation point per run, and the scaling-law fit over them.
 */
import { Schema } from "effect"

/** One ablation run: N (active parameters), D (tokens trained), C = 6 N D and its validation loss. */
export const ValidationPoint = Schema.Struct({
  point: Schema.String,
  shape: Schema.String,
  flopsBudget: Schema.Number,
  iteration: Schema.Number,
  activeParams: Schema.Number,
  totalParams: Schema.Number,
  tokens: Schema.Number,
  flops: Schema.Number,
  loss: Schema.Number,
  perplexity: Schema.Number,
  samples: Schema.Number
})
export type ValidationPoint = typeof ValidationPoint.Type

export const LawParamsSchema = Schema.Struct({
  E: Schema.Number,
  A: Schema.Number,
  alpha: Schema.Number,
  B: Schema.Number,
  beta: Schema.Number
})

export const FitSummary = Schema.Struct({
  method: Schema.Literal("raw", "log"),
  params: LawParamsSchema,
  /**
   * Mean over runs of Huber_delta(log L_pred - log L_obs) at `params`, FLAME-MoE's unit (np.mean).
   * Fits written by scaling/fit version 1 gave the sum (80 times as large for the 80 ablation runs).
   */
  objective: Schema.Number,
  /** What L-BFGS-B minimised: the mean (FLAME-MoE's, the raw fit) or the sum (the log fit); absent before version 2. */
  reduction: Schema.optional(Schema.Literal("mean", "sum")),
  delta: Schema.Number,
  start: LawParamsSchema,
  iterations: Schema.Number,
  evaluations: Schema.Number,
  status: Schema.String,
  startsTried: Schema.Number,
  startsConverged: Schema.Number,
  startsFailed: Schema.Number,
  /** Predicted loss at each run, in the order of `runs`. */
  predicted: Schema.Array(Schema.Number),
  /** N*(C), D*(C) and L at the optimum for each budget of `budgets`. */
  computeOptimal: Schema.Array(Schema.Struct({
    flops: Schema.Number,
    activeParams: Schema.Number,
    tokens: Schema.Number,
    loss: Schema.Number
  })),
  isoFlop: Schema.Array(Schema.Struct({
    flops: Schema.Number,
    points: Schema.Array(Schema.Struct({ activeParams: Schema.Number, tokens: Schema.Number, loss: Schema.Number }))
  }))
})
export type FitSummary = typeof FitSummary.Type

export const ScalingFitResult = Schema.Struct({
  analysis: Schema.Literal("scalingLaw"),
  form: Schema.Literal("L(N, D) = E + A / N^alpha + B / D^beta"),
  runs: Schema.Array(ValidationPoint),
  /**
   * The compute budgets curves and optima are given for: per budget group of the grid, the geometric mean
   * of the runs' 6 N D (equal to the nominal budget up to rounding for the published grid).
   */
  budgets: Schema.Array(Schema.Struct({ flopsBudget: Schema.Number, flops: Schema.Number })),
  fits: Schema.Array(FitSummary),
  /** The published constants, evaluated on the same runs (the objective, a mean as the fits', of the published law on this data). */
  published: Schema.Struct({ params: LawParamsSchema, objective: Schema.Number })
})
export type ScalingFitResult = typeof ScalingFitResult.Type
