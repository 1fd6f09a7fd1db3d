/**
 * The body of a `train` stage with `backend: megatron`: generates FLAME-MoE's pretrain_gpt.py
 * command line for the stage's params, launches it across the job's nodes, follows its log, and
 * checks that Megatron finished. The stage's staging directory is Megatron's --save and --load
 * directory, so its iter_XXXXXXX checkpoints are the stage's outputs, and a run interrupted or
 * requeued resumes from the latest complete one.
 */
import { Effect, Either } from "effect"
import { StageFailed } from "../domain/Errors.ts"
import type { WorkerFailed } from "../domain/Errors.ts"
import { countParams } from "../flame/paramCount.ts"
import type { StageContext } from "../Stage.ts"
import type { MegatronTraining } from "./Arguments.ts"
import { completeCheckpoints, trackedIteration, TRACKER } from "./Checkpoints.ts"
import { iterationMetrics, parseCheckpointLoaded, parseIterationLine, parseValidationLine } from "./LogParser.ts"
import type { MegatronParams } from "./Params.ts"
import { runLauncher } from "./runLauncher.ts"
import { stageLaunch } from "./StageLaunch.ts"

export interface MegatronTrainParams extends MegatronTraining {
  readonly model: MegatronTraining["model"] & { readonly vocabSize: number }
  readonly megatron?: MegatronParams | undefined
}

export interface MegatronTrainResult {
  readonly finalLoss: number | null
  readonly iterations: number
  readonly startIteration: number
  readonly tokens: number
  readonly tokensPerSecond: number
  readonly activeParams: number
  readonly totalParams: number
  readonly reusedCheckpoints: ReadonlyArray<string>
}

/**
 * The loss and throughput of a training an attempt resumed at its end: a requeued or resubmitted job
 * whose earlier attempt saved the final checkpoint, then was lost before it reported, trains nothing
 * itself. They come from what the earlier attempts recorded: the loss of the final iteration, and
 * tokens per second over every iteration recorded (each trains as many tokens: their harmonic mean).
 */
export const recordedTraining = (
  ctx: Pick<StageContext<unknown>, "recordedMetric">,
  trainIters: number
): { readonly finalLoss: number | null; readonly tokensPerSecond: number } => {
  const loss = ctx.recordedMetric?.("loss").find((m) => m.step === trainIters)?.value ?? null
  const rates = (ctx.recordedMetric?.("tokens_per_s") ?? []).flatMap((m) =>
    m.step <= trainIters && m.value !== null && m.value > 0 ? [m.value] : []
  )
  return {
    finalLoss: loss,
    tokensPerSecond: rates.length === 0 ? 0 : rates.length / rates.reduce((sum, rate) => sum + 1 / rate, 0)
  }
}

export const trainWithMegatron = (
  ctx: StageContext<MegatronTrainParams>,
  dataPath: ReadonlyArray<string>
): Effect.Effect<MegatronTrainResult, StageFailed | WorkerFailed> =>
  Effect.gen(function*() {
    const p = ctx.params
    const fail = (reason: string) => new StageFailed({ stage: ctx.stageId, reason })
    const saveDir = ctx.workDir
    const startIteration = trackedIteration(saveDir) ?? 0
    const reused = completeCheckpoints(saveDir).map((c) => c.name)
    if (startIteration > 0) yield* ctx.log(`resuming from iteration ${startIteration} (${TRACKER} in ${saveDir})`)

    const plan = stageLaunch(p, {
      stageId: ctx.stageId,
      dataPath,
      saveDir,
      env: process.env,
      runId: `${ctx.stageId}-${Date.now()}`,
      gpus: ctx.gpus
    })
    if (Either.isLeft(plan)) return yield* fail(plan.left)

    const tokensPerIteration = p.globalBatchSize * p.model.seqLength
    let finalLoss: number | null = null
    let loadedIteration: number | undefined
    const t0 = Date.now()
    yield* runLauncher(ctx, plan.right, (line) => {
      const iteration = parseIterationLine(line)
      if (iteration) {
        for (const { name, value } of iterationMetrics(iteration, tokensPerIteration)) {
          Effect.runSync(ctx.metric(name, iteration.iteration, value))
        }
        Effect.runSync(ctx.progress(iteration.iteration, iteration.trainIters))
        finalLoss = iteration.fields.get("lm loss") ?? finalLoss
        return
      }
      const validation = parseValidationLine(line)
      if (validation) return Effect.runSync(ctx.metric("val_loss", validation.iteration, validation.loss))
      loadedIteration = parseCheckpointLoaded(line) ?? loadedIteration
    })
    const seconds = (Date.now() - t0) / 1000

    const finished = trackedIteration(saveDir)
    if (finished !== p.trainIters) {
      return yield* fail(
        `Megatron-LM exited without error, but its latest complete checkpoint is ${
          finished === undefined ? "none" : `iteration ${finished}`
        } of ${p.trainIters} (${TRACKER})`
      )
    }
    if (startIteration > 0 && loadedIteration !== undefined && loadedIteration !== startIteration) {
      yield* ctx.log(`note: resumed at iteration ${loadedIteration}, the tracker said ${startIteration}`)
    }
    const counts = countParams(
      {
        numLayers: p.model.numLayers,
        hiddenSize: p.model.hiddenSize,
        ffnHiddenSize: p.model.ffnHiddenSize,
        moeFfnHiddenSize: p.model.moeFfnHiddenSize,
        moeLayerFreq: p.model.moeLayers
      },
      {
        paddedVocabSize: p.model.vocabSize,
        numExperts: p.model.numExperts,
        routerTopK: p.model.topK,
        sharedExpertWidthFactor: p.model.sharedExpertSize / p.model.moeFfnHiddenSize
      }
    )
    const tokens = (p.trainIters - startIteration) * tokensPerIteration
    // Resumed at the final checkpoint: nothing trained here, the earlier attempts' record says how it went.
    const recorded = startIteration === p.trainIters ? recordedTraining(ctx, p.trainIters) : undefined
    return {
      finalLoss: recorded?.finalLoss ?? finalLoss,
      iterations: p.trainIters,
      startIteration: loadedIteration ?? startIteration,
      tokens,
      tokensPerSecond: recorded?.tokensPerSecond ?? (seconds > 0 ? tokens / seconds : 0),
      activeParams: counts.active,
      totalParams: counts.total,
      reusedCheckpoints: reused
    }
  })
