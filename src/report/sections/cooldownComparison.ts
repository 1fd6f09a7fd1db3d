/**
 * What the cool-down section compares, as numbers: the cool-down grid's fit against the grid's (or,
 * when the report covers no grid, against FLAME-MoE's published constants, its fit of the grid), the
 * loss each fit predicts at the compute-optimal N*(C) of every budget, and the tokens each approach
 * planned (from the train stages' params) and trained (from their executions' results: a seeded
 * execution trained only from its seedIteration on).
 */
import { Either, Schema } from "effect"
import type { ComputeOptimal } from "../../scaling/computeOptimal.ts"
import { computeOptimal } from "../../scaling/computeOptimal.ts"
import {
  ablationStageIds,
  cooldownStageIds,
  isCooldownTrainStage,
  isGridTrainStage,
  plannedIterations,
  trainedIterations
} from "../../scaling/cooldownRuns.ts"
import type { LawParams } from "../../scaling/law.ts"
import { publishedLaw } from "../../scaling/published.ts"
import { ScalingFitResult } from "../../scaling/schema.ts"
import { ReportError } from "../errors.ts"
import type { ReportData, StageRecord } from "../model.ts"
import { recordsOfKind } from "../model.ts"

export type FitMethod = ScalingFitResult["fits"][number]["method"]

/** The fit the cool-down grid is held against. */
export type Reference =
  | { readonly _tag: "grid"; readonly stageId: string; readonly fit: ScalingFitResult }
  | { readonly _tag: "published" }

export interface MethodComparison {
  readonly method: FitMethod
  readonly reference: { readonly params: LawParams; readonly objective: number; readonly runs: number }
  readonly cooldown: { readonly params: LawParams; readonly objective: number; readonly runs: number }
}

export interface OptimumComparison {
  readonly flopsBudget: number
  /** The compute both fits are evaluated at: the mean 6 N D of the budget's branch ends. */
  readonly flops: number
  readonly method: FitMethod
  readonly reference: ComputeOptimal
  readonly cooldown: ComputeOptimal
  /** cool-down's predicted loss minus the reference's. */
  readonly difference: number
}

/** Planned and trained tokens of a set of train stages. */
export interface TokenTotals {
  readonly stages: number
  /** What the plan trains: all of a grid run or constant-rate run, only the anneal of a branch. */
  readonly planned: number
  /** Every stage trained from step 0, as without checkpoints to start from. */
  readonly fromScratch: number
  /** Summed over the executions; null when one of them recorded no result. */
  readonly trained: number | null
}

export interface ShapeTokens {
  /** The train stages' `scale`: one per shape for the cool-down runs. */
  readonly scale: string
  /** The grid's tokens for the shape: each branch's length from scratch. */
  readonly grid: number
  readonly cooldown: TokenTotals
}

export interface CooldownComparison {
  readonly cooldownStage: string
  readonly cooldownFit: ScalingFitResult
  readonly reference: Reference
  readonly methods: ReadonlyArray<MethodComparison>
  readonly optima: ReadonlyArray<OptimumComparison>
  /** The grid's tokens: of its train stages when the report has them, else the branches' lengths from scratch. */
  readonly gridTokens: TokenTotals & { readonly fromBranches: boolean }
  readonly cooldownTokens: TokenTotals
  readonly byShape: ReadonlyArray<ShapeTokens>
  /** Validation loss of the same point (shape and budget) in both grids, where the report has both. */
  readonly pairs: ReadonlyArray<{ readonly point: string; readonly grid: number; readonly cooldown: number }>
}

const decodeFit = Schema.decodeUnknownEither(ScalingFitResult)

/** The parts of a train stage's recorded params the token counts need. */
const TrainParamsFields = Schema.Struct({
  scale: Schema.String,
  trainIters: Schema.Number,
  globalBatchSize: Schema.Number,
  wsdDecayFraction: Schema.optionalWith(Schema.Number, { default: () => 0.1 }),
  model: Schema.Struct({ seqLength: Schema.Number })
})
const decodeTrainParams = Schema.decodeUnknownEither(TrainParamsFields)

/** The result field a seeded execution carries: the step it continued from another execution's checkpoint. */
const TrainResultFields = Schema.Struct({ seedIteration: Schema.optional(Schema.Number) })
const decodeTrainResult = Schema.decodeUnknownEither(TrainResultFields)

const fitOf = (record: StageRecord): ScalingFitResult => {
  const decoded = decodeFit(record.documents["fit.json"])
  if (Either.isLeft(decoded)) {
    throw new ReportError({ where: `${record.stageId} output fit.json`, reason: decoded.left.message })
  }
  return decoded.right
}

interface TrainCount {
  readonly scale: string
  readonly branch: boolean
  readonly planned: number
  readonly fromScratch: number
  readonly trained: number | null
}

const trainCount = (record: StageRecord): TrainCount => {
  const params = decodeTrainParams(record.params)
  if (Either.isLeft(params)) throw new ReportError({ where: `${record.stageId} params`, reason: params.left.message })
  const p = params.right
  const perIteration = p.globalBatchSize * p.model.seqLength
  const result = record.result === null ? undefined : decodeTrainResult(record.result)
  if (result !== undefined && Either.isLeft(result)) {
    throw new ReportError({ where: `${record.stageId} result`, reason: result.left.message })
  }
  return {
    scale: p.scale,
    branch: p.wsdDecayFraction > 0,
    planned: plannedIterations(p) * perIteration,
    fromScratch: p.trainIters * perIteration,
    trained: result === undefined ? null : trainedIterations(p.trainIters, result.right.seedIteration) * perIteration
  }
}

const totals = (counts: ReadonlyArray<TrainCount>): TokenTotals => ({
  stages: counts.length,
  planned: counts.reduce((n, c) => n + c.planned, 0),
  fromScratch: counts.reduce((n, c) => n + c.fromScratch, 0),
  trained: counts.some((c) => c.trained === null) ? null : counts.reduce((n, c) => n + c.trained!, 0)
})

/** A grid run trains all of its iterations: planned is its length. */
const gridCount = (record: StageRecord): TrainCount => {
  const c = trainCount(record)
  return { ...c, planned: c.fromScratch }
}

const referenceFit = (reference: Reference, method: FitMethod, runs: number, publishedObjective: number) => {
  if (reference._tag === "published") return { params: publishedLaw, objective: publishedObjective, runs }
  const fit = reference.fit.fits.find((f) => f.method === method)
  return fit === undefined
    ? undefined
    : { params: fit.params, objective: fit.objective, runs: reference.fit.runs.length }
}

/** The comparison, or undefined when the report covers no cool-down fit. */
export const cooldownComparison = (data: ReportData): CooldownComparison | undefined => {
  const fits = recordsOfKind(data, "scaling/fit")
  const cooled = fits.find((r) => r.stageId === cooldownStageIds.fit)
  if (cooled === undefined) return undefined
  const cooldownFit = fitOf(cooled)
  const gridRecord = fits.find((r) => r.stageId === ablationStageIds.fit)
  const reference: Reference = gridRecord === undefined
    ? { _tag: "published" }
    : { _tag: "grid", stageId: gridRecord.stageId, fit: fitOf(gridRecord) }

  const methods = cooldownFit.fits.flatMap((f): Array<MethodComparison> => {
    const ref = referenceFit(reference, f.method, cooldownFit.runs.length, cooldownFit.published.objective)
    return ref === undefined ? [] : [{
      method: f.method,
      reference: ref,
      cooldown: { params: f.params, objective: f.objective, runs: cooldownFit.runs.length }
    }]
  })
  const optima = cooldownFit.budgets.flatMap((b) =>
    methods.map((m) => {
      const reference = computeOptimal(m.reference.params, b.flops)
      const cooldown = computeOptimal(m.cooldown.params, b.flops)
      return {
        flopsBudget: b.flopsBudget,
        flops: b.flops,
        method: m.method,
        reference,
        cooldown,
        difference: cooldown.loss - reference.loss
      }
    })
  )

  const trains = recordsOfKind(data, "train")
  const cooldownCounts = trains.filter((r) => isCooldownTrainStage(r.stageId)).map(trainCount)
  const gridCounts = trains.filter((r) => isGridTrainStage(r.stageId)).map(gridCount)
  const branches = cooldownCounts.filter((c) => c.branch)
  // Each branch trains to its grid run's length: from scratch, the branches are the grid.
  const branchesAsGrid: TokenTotals = {
    stages: branches.length,
    planned: branches.reduce((n, c) => n + c.fromScratch, 0),
    fromScratch: branches.reduce((n, c) => n + c.fromScratch, 0),
    trained: null
  }
  const gridTokens = gridCounts.length > 0
    ? { ...totals(gridCounts), fromBranches: false }
    : { ...branchesAsGrid, fromBranches: true }
  const scales = [...new Set(cooldownCounts.map((c) => c.scale))]
  const byShape = scales.map((scale) => {
    const mine = cooldownCounts.filter((c) => c.scale === scale)
    return {
      scale,
      grid: mine.filter((c) => c.branch).reduce((n, c) => n + c.fromScratch, 0),
      cooldown: totals(mine)
    }
  })

  const gridLoss = new Map(reference._tag === "grid" ? reference.fit.runs.map((r) => [r.point, r.loss]) : [])
  const pairs = cooldownFit.runs.flatMap((r) => {
    const grid = gridLoss.get(r.point)
    return grid === undefined ? [] : [{ point: r.point, grid, cooldown: r.loss }]
  })

  return {
    cooldownStage: cooled.stageId,
    cooldownFit,
    reference,
    methods,
    optima,
    gridTokens,
    cooldownTokens: totals(cooldownCounts),
    byShape,
    pairs
  }
}
