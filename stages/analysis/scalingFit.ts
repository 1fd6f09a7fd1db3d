/**
 * ablation/fit: the scaling law L(N, D) = E + A / N^alpha + B / D^beta fitted to every validation point
 * of the ablation grid, by both methods of src/scaling/fit.ts (FLAME-MoE's raw parameters on the mean of
 * the Huber losses, and our well-conditioned log parameters) with their objectives side by side, each the
 * mean over runs as FLAME-MoE's notebook reports it, plus what each fit implies: compute-optimal N*(C) per
 * budget and iso-FLOP curves.
 *
 * Version 2: the raw fit minimises the mean, as the notebook did (version 1 minimised the sum, which
 * stops its starts elsewhere), keeps only starts that converged, and every objective is the mean.
 */
import { Effect, Schema } from "effect"
import * as fs from "node:fs"
import { StageFailed } from "../../src/domain/Errors.ts"
import { computeOptimal, isoFlopCurve } from "../../src/scaling/computeOptimal.ts"
import { fitScalingLaw, flameInitialGrid } from "../../src/scaling/fit.ts"
import { objectiveValue, predictLoss } from "../../src/scaling/law.ts"
import { publishedLaw } from "../../src/scaling/published.ts"
import type { FitSummary, ScalingFitResult } from "../../src/scaling/schema.ts"
import { ValidationPoint } from "../../src/scaling/schema.ts"
import { define } from "../../src/Stage.ts"

const Grid = Schema.Struct({
  logE: Schema.NonEmptyArray(Schema.Number),
  logA: Schema.NonEmptyArray(Schema.Number),
  alpha: Schema.NonEmptyArray(Schema.Number),
  logB: Schema.NonEmptyArray(Schema.Number),
  beta: Schema.NonEmptyArray(Schema.Number)
})

const decodePoint = Schema.decodeUnknownSync(Schema.parseJson(ValidationPoint))

export const pointInputName = (point: string): string => `point:${point}`

export const FitParams = Schema.Struct({
  methods: Schema.optionalWith(Schema.NonEmptyArray(Schema.Literal("raw", "log")), {
    default: () => ["raw", "log"] as const
  }),
  delta: Schema.optionalWith(Schema.Number.pipe(Schema.positive()), { default: () => 1e-3 }),
  grid: Schema.optionalWith(Grid, { default: () => flameInitialGrid as typeof Grid.Type }),
  /** Points per iso-FLOP curve. */
  curvePoints: Schema.optionalWith(Schema.Int.pipe(Schema.greaterThanOrEqualTo(2)), { default: () => 61 })
})
export type FitParams = typeof FitParams.Type

export const scalingFit = define({
  kind: "scaling/fit",
  version: "2",
  params: FitParams,
  outputs: () => ({ "fit.json": "file" }),
  result: Schema.Struct({
    runs: Schema.Number,
    /** Per method, the mean over runs of the Huber losses at its fit (version 1: their sum). */
    objectives: Schema.Record({ key: Schema.String, value: Schema.Number }),
    params: Schema.Record({
      key: Schema.String,
      value: Schema.Struct({
        E: Schema.Number,
        A: Schema.Number,
        alpha: Schema.Number,
        B: Schema.Number,
        beta: Schema.Number
      })
    })
  }),
  reproducibility: { _tag: "bitwise" },
  run: (ctx) =>
    Effect.gen(function*() {
      const out = yield* Effect.try({
        try: () => fitAll(ctx.params, ctx.inputs),
        catch: (e) => new StageFailed({ stage: ctx.stageId, reason: e instanceof Error ? e.message : String(e) })
      })
      yield* Effect.try({
        try: () => fs.writeFileSync(ctx.output("fit.json"), JSON.stringify(out, null, 2) + "\n"),
        catch: (e) => new StageFailed({ stage: ctx.stageId, reason: `cannot write fit.json: ${String(e)}` })
      })
      for (const fit of out.fits) yield* ctx.log(describeFit(fit))
      return {
        runs: out.runs.length,
        objectives: Object.fromEntries(out.fits.map((f) => [f.method, f.objective])),
        params: Object.fromEntries(out.fits.map((f) => [f.method, f.params]))
      }
    })
})

const describeFit = (fit: FitSummary): string => {
  const q = fit.params
  const constants = `E ${q.E.toPrecision(5)} A ${q.A.toPrecision(5)} alpha ${q.alpha.toPrecision(4)} ` +
    `B ${q.B.toPrecision(5)} beta ${q.beta.toPrecision(4)}`
  return `${fit.method}: mean objective ${fit.objective.toExponential(4)} (minimised: ${fit.reduction ?? "sum"}), ` +
    `${constants} ` +
    `(best of ${fit.startsTried} starts, ${fit.startsConverged} converged)`
}

/** The whole fit from the stage's params and its `point:<id>` inputs (val.json files). */
export const fitAll = (
  p: FitParams,
  inputs: Readonly<Record<string, string>>
): ScalingFitResult => {
  const runs = Object.entries(inputs)
    .filter(([name]) => name.startsWith("point:"))
    .map(([name, file]) => {
      try {
        return decodePoint(fs.readFileSync(file, "utf8"))
      } catch (e) {
        throw new Error(`input ${name} (${file}): ${e instanceof Error ? e.message : String(e)}`)
      }
    })
    .sort((a, b) => (a.point < b.point ? -1 : a.point > b.point ? 1 : 0))
  if (runs.length === 0) throw new Error("no validation points wired as inputs (point:<id>)")
  const observations = runs.map((r) => ({ N: r.activeParams, D: r.tokens, loss: r.loss }))
  const groups = [...new Set(runs.map((r) => r.flopsBudget))].sort((a, b) => a - b)
  const budgets = groups.map((flopsBudget) => {
    const members = runs.filter((r) => r.flopsBudget === flopsBudget)
    const flops = Math.exp(members.reduce((s, r) => s + Math.log(r.flops), 0) / members.length)
    return { flopsBudget, flops }
  })
  const minN = Math.min(...runs.map((r) => r.activeParams)) / 3
  const maxN = Math.max(...runs.map((r) => r.activeParams)) * 3
  const fits: Array<FitSummary> = p.methods.map((method) => {
    const fit = fitScalingLaw(observations, { method, delta: p.delta, grid: p.grid })
    return {
      ...fit,
      predicted: observations.map((o) => predictLoss(fit.params, o.N, o.D)),
      computeOptimal: budgets.map((b) => computeOptimal(fit.params, b.flops)),
      isoFlop: budgets.map((b) => isoFlopCurve(fit.params, b.flops, minN, maxN, p.curvePoints))
    }
  })
  return {
    analysis: "scalingLaw",
    form: "L(N, D) = E + A / N^alpha + B / D^beta",
    runs,
    budgets,
    fits,
    published: { params: publishedLaw, objective: objectiveValue(observations, p.delta, publishedLaw) }
  }
}
