/**
 * Routing analyses over the router traces of one scale (src/analysis):
 *
 *   analysis/<scale>/saturation       every checkpoint's trace against the final one
 *   analysis/<scale>/load-balance     every checkpoint
 *   analysis/<scale>/coactivation     the final checkpoint
 *   analysis/<scale>/specialization   the final checkpoint (summary JSON + the full counts)
 *
 * and, where a pipeline asks for every checkpoint (as FLAME-MoE's notebooks compute them):
 *
 *   analysis/<scale>/coactivation/<step>, analysis/<scale>/specialization/<step>   each earlier checkpoint
 *   analysis/<scale>/specialization-tracking   the final checkpoint's top tokens per expert, followed over
 *                                              every checkpoint's counts
 *
 * Each consumes `trace.bin` outputs (the tracking: `specialization.bin`), named `step<N>` by checkpoint
 * step, and is cached on their hashes.
 * Their JSON outputs (src/analysis/schema.ts) name layers by Megatron's 1-based layer number (FLAME-MoE's
 * first MoE layer is layer 2; src/analysis/layerNumber.ts); specialization.bin keeps the trace's 0-based
 * indices. Version 2: version 1 wrote the 0-based indices in the JSON.
 */
import { Effect, Schema } from "effect"
import * as fs from "node:fs"
import { expertCoactivation } from "../../src/analysis/coactivation.ts"
import { loadBalance } from "../../src/analysis/loadBalance.ts"
import { routerSaturation } from "../../src/analysis/saturation.ts"
import { expertSpecialization } from "../../src/analysis/specialization.ts"
import { trackSpecialization } from "../../src/analysis/specializationTracking.ts"
import { StageFailed } from "../../src/domain/Errors.ts"
import type { StageContext, StageNode } from "../../src/Stage.ts"
import { define, node, ref } from "../../src/Stage.ts"

/** Checkpoint steps in training order: the last one is the final checkpoint the others are compared with. */
const Steps = Schema.NonEmptyArray(Schema.Int.pipe(Schema.nonNegative())).pipe(
  Schema.filter((steps) => steps.every((s, i) => i === 0 || s > steps[i - 1]!) || "steps must be strictly increasing")
)

export const traceInputName = (step: number): string => `step${step}`

const traceOf = (ctx: StageContext<unknown>, step: number, what = "trace"): string => {
  const file = ctx.inputs[traceInputName(step)]
  if (file === undefined) {
    throw new StageFailed({ stage: ctx.stageId, reason: `no ${what} wired as input '${traceInputName(step)}'` })
  }
  return file
}

/** Runs an analysis body; a trace problem fails the stage with the message naming the file. */
const analyse = <A>(ctx: StageContext<unknown>, body: () => A) =>
  Effect.try({
    try: body,
    catch: (e) =>
      e instanceof StageFailed
        ? e
        : new StageFailed({ stage: ctx.stageId, reason: e instanceof Error ? e.message : String(e) })
  })

const writeJson = (file: string, value: unknown) => fs.writeFileSync(file, JSON.stringify(value) + "\n")

const mean = (xs: ReadonlyArray<number>) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)

export const routerSaturationStage = define({
  kind: "analysis/router-saturation",
  version: "2",
  params: Schema.Struct({
    scale: Schema.String,
    /** Checkpoint steps in training order; the last is the final checkpoint. */
    steps: Steps,
    ks: Schema.optionalWith(Schema.NonEmptyArray(Schema.Int.pipe(Schema.positive())), { default: () => [6, 4, 2, 1] })
  }),
  outputs: () => ({ "saturation.json": "file" }),
  result: Schema.Struct({
    layers: Schema.Number,
    tokens: Schema.Number,
    /** Layer mean at the first checkpoint, one per k. */
    firstCheckpoint: Schema.Array(Schema.Number)
  }),
  reproducibility: { _tag: "bitwise" },
  run: (ctx) =>
    analyse(ctx, () => {
      const p = ctx.params
      const result = routerSaturation({
        scale: p.scale,
        checkpoints: p.steps.map((step) => ({ step, file: traceOf(ctx, step) })),
        ks: p.ks
      })
      writeJson(ctx.output("saturation.json"), result)
      return {
        layers: result.layers.length,
        tokens: result.tokens,
        firstCheckpoint: p.ks.map((_, k) => mean(result.saturation.map((layer) => layer[0]![k]!)))
      }
    })
})

export const loadBalanceStage = define({
  kind: "analysis/load-balance",
  version: "2",
  params: Schema.Struct({ scale: Schema.String, steps: Steps }),
  outputs: () => ({ "load-balance.json": "file" }),
  result: Schema.Struct({
    layers: Schema.Number,
    tokens: Schema.Number,
    /** Layer mean of the coefficient of variation at the final checkpoint. */
    finalCv: Schema.Number
  }),
  reproducibility: { _tag: "bitwise" },
  run: (ctx) =>
    analyse(ctx, () => {
      const p = ctx.params
      const result = loadBalance({
        scale: p.scale,
        checkpoints: p.steps.map((step) => ({ step, file: traceOf(ctx, step) }))
      })
      writeJson(ctx.output("load-balance.json"), result)
      return {
        layers: result.layers.length,
        tokens: result.tokens,
        finalCv: mean(result.cv.map((layer) => layer[layer.length - 1]!))
      }
    })
})

export const coactivationStage = define({
  kind: "analysis/expert-coactivation",
  version: "2",
  params: Schema.Struct({ scale: Schema.String, step: Schema.Int.pipe(Schema.nonNegative()) }),
  outputs: () => ({ "coactivation.json": "file" }),
  result: Schema.Struct({ layers: Schema.Number, tokens: Schema.Number }),
  reproducibility: { _tag: "bitwise" },
  run: (ctx) =>
    analyse(ctx, () => {
      const p = ctx.params
      const result = expertCoactivation({ scale: p.scale, step: p.step, file: traceOf(ctx, p.step) })
      writeJson(ctx.output("coactivation.json"), result)
      return { layers: result.layers.length, tokens: result.tokens }
    })
})

export const specializationStage = define({
  kind: "analysis/expert-specialization",
  version: "2",
  params: Schema.Struct({
    scale: Schema.String,
    step: Schema.Int.pipe(Schema.nonNegative()),
    /** Token ids run 0 .. vocabSize - 1 (the model's padded vocabulary). */
    vocabSize: Schema.Int.pipe(Schema.positive()),
    minOccurrences: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 10 }),
    topTokens: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 10 })
  }),
  outputs: () => ({ "specialization.json": "file", "specialization.bin": "file" }),
  result: Schema.Struct({
    layers: Schema.Number,
    tokens: Schema.Number,
    distinctTokens: Schema.Number,
    eligibleTokens: Schema.Number
  }),
  resources: (p) => ({ memoryMb: Math.max(512, Math.ceil((p.vocabSize * 64 * 12) / 2 ** 20) + 256) }),
  reproducibility: { _tag: "bitwise" },
  run: (ctx) =>
    analyse(ctx, () => {
      const p = ctx.params
      const result = expertSpecialization({
        scale: p.scale,
        step: p.step,
        file: traceOf(ctx, p.step),
        vocabSize: p.vocabSize,
        minOccurrences: p.minOccurrences,
        topTokens: p.topTokens,
        countsFile: ctx.output("specialization.bin")
      })
      writeJson(ctx.output("specialization.json"), result)
      return {
        layers: result.layers.length,
        tokens: result.tokens,
        distinctTokens: result.distinctTokens,
        eligibleTokens: result.eligibleTokens
      }
    })
})

export const specializationTrackingStage = define({
  kind: "analysis/specialization-tracking",
  version: "1",
  params: Schema.Struct({
    scale: Schema.String,
    /** Checkpoint steps in training order; the last is the final checkpoint whose top tokens are followed. */
    steps: Steps,
    // FLAME-MoE's notebook: min_samples = 5, top_k = 2.
    minOccurrences: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 5 }),
    topTokens: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 2 })
  }),
  outputs: () => ({ "specialization-tracking.json": "file" }),
  result: Schema.Struct({
    layers: Schema.Number,
    /** Layer mean of the tracked top token's mean score at the first and at the final checkpoint. */
    firstTrackedScore: Schema.NullOr(Schema.Number),
    finalTrackedScore: Schema.NullOr(Schema.Number)
  }),
  // One checkpoint's full counts at a time (a published scale's are a few hundred MB).
  resources: () => ({ memoryMb: 1536 }),
  reproducibility: { _tag: "bitwise" },
  run: (ctx) =>
    analyse(ctx, () => {
      const p = ctx.params
      const result = trackSpecialization({
        scale: p.scale,
        checkpoints: p.steps.map((step) => ({ step, file: traceOf(ctx, step, "specialization counts") })),
        minOccurrences: p.minOccurrences,
        topTokens: p.topTokens
      })
      writeJson(ctx.output("specialization-tracking.json"), result)
      const top1 = (s: number) => {
        const values = result.perLayer.flatMap((l) => {
          const v = l.meanTrackedScore[0]?.[s]
          return v === null || v === undefined ? [] : [v]
        })
        return values.length === 0 ? null : mean(values)
      }
      return { layers: result.layers.length, firstTrackedScore: top1(0), finalTrackedScore: top1(p.steps.length - 1) }
    })
})

export const routingAnalysisId = {
  saturation: (scale: string) => `analysis/${scale}/saturation`,
  loadBalance: (scale: string) => `analysis/${scale}/load-balance`,
  coactivation: (scale: string) => `analysis/${scale}/coactivation`,
  specialization: (scale: string) => `analysis/${scale}/specialization`,
  specializationTracking: (scale: string) => `analysis/${scale}/specialization-tracking`
}

/**
 * The four analysis stages of one scale, reading the traces of `steps` (training order, final last) from
 * the stages `traceStage(step)`, each of which outputs `trace.bin`; with `everyCheckpoint`, co-activation
 * and specialization at the earlier checkpoints too, and the specialization tracking over all of them.
 */
export const routingAnalysisNodes = (options: {
  readonly scale: string
  readonly steps: ReadonlyArray<number>
  readonly traceStage: (step: number) => string
  readonly vocabSize: number
  /** Tokens seen fewer times are left out of the specialization summary. */
  readonly minOccurrences?: number
  /**
   * Also co-activation and specialization at every earlier checkpoint, as FLAME-MoE's notebooks
   * compute them (`analysis/<scale>/coactivation/<step>`, `.../specialization/<step>`).
   */
  readonly everyCheckpoint?: boolean
}): ReadonlyArray<StageNode> => {
  const { scale, steps, traceStage } = options
  const final = steps[steps.length - 1]
  if (final === undefined) throw new Error(`routing analyses of ${scale}: no checkpoints`)
  const all = Object.fromEntries(steps.map((step) => [traceInputName(step), ref(traceStage(step), "trace.bin")]))
  const only = (step: number) => ({ [traceInputName(step)]: ref(traceStage(step), "trace.bin") })
  const last = only(final)
  const specializationParams = (step: number) => ({
    scale,
    step,
    vocabSize: options.vocabSize,
    ...(options.minOccurrences === undefined ? {} : { minOccurrences: options.minOccurrences })
  })
  const earlier = options.everyCheckpoint === true ? steps.slice(0, -1) : []
  return [
    ...earlier.flatMap((step) => [
      node(coactivationStage, {
        id: `${routingAnalysisId.coactivation(scale)}/${step}`,
        params: { scale, step },
        inputs: only(step)
      }),
      node(specializationStage, {
        id: `${routingAnalysisId.specialization(scale)}/${step}`,
        params: specializationParams(step),
        inputs: only(step)
      })
    ]),
    node(routerSaturationStage, {
      id: routingAnalysisId.saturation(scale),
      params: { scale, steps: steps as [number, ...Array<number>] },
      inputs: all
    }),
    node(loadBalanceStage, {
      id: routingAnalysisId.loadBalance(scale),
      params: { scale, steps: steps as [number, ...Array<number>] },
      inputs: all
    }),
    node(coactivationStage, {
      id: routingAnalysisId.coactivation(scale),
      params: { scale, step: final },
      inputs: last
    }),
    node(specializationStage, {
      id: routingAnalysisId.specialization(scale),
      params: specializationParams(final),
      inputs: last
    }),
    ...(earlier.length === 0 ? [] : [
      node(specializationTrackingStage, {
        id: routingAnalysisId.specializationTracking(scale),
        params: { scale, steps: steps as [number, ...Array<number>] },
        inputs: Object.fromEntries(steps.map((step) => [
          traceInputName(step),
          ref(
            step === final
              ? routingAnalysisId.specialization(scale)
              : `${routingAnalysisId.specialization(scale)}/${step}`,
            "specialization.bin"
          )
        ]))
      })
    ])
  ]
}
