/**
 * train/<scale>: pre-trains one model with the worker, writing a checkpoint every saveInterval
 * iterations and at the end; each checkpoint is its own artifact. The stage is resumable: its
 * staging directory survives an interruption, and the next attempt continues from the newest
 * complete checkpoint there, bit-identically to an uninterrupted run.
 *
 * With `backend: megatron` the stage runs Megatron-LM's pretrain_gpt.py instead (src/megatron/), with
 * FLAME-MoE's arguments, on `megatron.nodes` nodes under the Slurm executor; Megatron's checkpoints
 * are the outputs, and a requeued or interrupted run resumes from the latest complete one.
 */
import { Effect, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { checkpointSteps } from "../src/flame/checkpoints.ts"
import { WsdDecayStyle } from "../src/flame/schema.ts"
import { trainingPrefixes } from "../src/flame/trainingPrefix.ts"
import { layoutProblems } from "../src/megatron/Arguments.ts"
import { MegatronParams } from "../src/megatron/Params.ts"
import { defaultMegatronParams, megatronResources } from "../src/megatron/Params.ts"
import { recordedTraining, trainWithMegatron } from "../src/megatron/train.ts"
import { define } from "../src/Stage.ts"
import { runWorker } from "../src/worker/runWorker.ts"
import {
  Backend,
  DataParams,
  megatronDataPath,
  ModelParams,
  settleBackend,
  workerBinary,
  workerDataConfig,
  writeWorkerConfig
} from "./flame/model.ts"

const PositiveInt = Schema.Int.pipe(Schema.positive())
const NonNegativeNumber = Schema.Finite.pipe(Schema.nonNegative())
/** A fraction of the training iterations. */
const Fraction = Schema.Finite.pipe(Schema.between(0, 1))

/** The worker's backends, or Megatron-LM. */
export const TrainBackend = Schema.Union(Backend, Schema.Literal("megatron"))

export const checkpointName = (iteration: number): string => `iter_${String(iteration).padStart(7, "0")}`

/** The newest complete checkpoint in a directory: the worker renames a checkpoint into place only when complete. */
export const latestCheckpoint = (dir: string): { name: string; iteration: number } | undefined =>
  fs.existsSync(dir)
    ? fs.readdirSync(dir)
      .filter((f) => /^iter_\d{7}$/.test(f) && fs.existsSync(`${dir}/${f}/state.json`))
      .map((name) => ({ name, iteration: Number(name.slice(5)) }))
      .sort((a, b) => b.iteration - a.iteration)[0]
    : undefined

export const TrainParams = Schema.Struct({
  scale: Schema.String,
  model: ModelParams,
  data: Schema.optionalWith(DataParams, { default: () => ({ split: "90,5,5", seed: 1234 }) }),
  globalBatchSize: PositiveInt,
  microBatchSize: PositiveInt,
  trainIters: PositiveInt,
  saveInterval: PositiveInt,
  /**
   * Further iterations to checkpoint at, beside every saveInterval and the last: where cool-down
   * branches of a constant-rate run start (each is an output like the interval's).
   */
  saveIters: Schema.optional(Schema.Array(PositiveInt)),
  lr: Schema.optionalWith(NonNegativeNumber, { default: () => 3e-4 }),
  minLr: Schema.optionalWith(NonNegativeNumber, { default: () => 3e-5 }),
  warmupFraction: Schema.optionalWith(Fraction, { default: () => 0.01 }),
  /**
   * Warm-up in iterations instead of a fraction of trainIters (FLAME-MoE's presets keep the fraction):
   * runs of different lengths with the same absolute warm-up agree on every step before their anneal.
   */
  warmupIters: Schema.optional(Schema.NonNegativeInt),
  wsdDecayFraction: Schema.optionalWith(Fraction, { default: () => 0.1 }),
  /**
   * The anneal's shape (Megatron's --lr-wsd-decay-style). Omitted for FLAME-MoE's exponential one, so
   * that runs made before the key existed keep their fingerprints.
   */
  wsdDecayStyle: Schema.optional(WsdDecayStyle),
  weightDecay: Schema.optionalWith(NonNegativeNumber, { default: () => 0.01 }),
  clipGrad: Schema.optionalWith(NonNegativeNumber, { default: () => 1.0 }),
  seed: Schema.optionalWith(Schema.NonNegativeInt, { default: () => 1234 }),
  logInterval: Schema.optionalWith(PositiveInt, { default: () => 1 }),
  backend: Schema.optionalWith(TrainBackend, { default: () => "auto" as const }),
  threads: Schema.optionalWith(PositiveInt, { default: () => 2 }),
  /** How Megatron-LM runs, for backend megatron (defaults: FLAME-MoE's 4 nodes x 8 GPUs). */
  megatron: Schema.optional(MegatronParams)
}).pipe(Schema.filter((p) => {
  // The rules that relate keys to each other, which the worker (or Megatron-LM) would otherwise
  // enforce only once the stage starts.
  const issues: Array<Schema.FilterIssue> = []
  // Rates like 10 x 3e-4 print as 0.0029999999999999996; six digits say the same.
  const show = (x: number) => String(Number(x.toPrecision(6)))
  if (p.minLr > p.lr) issues.push({ path: ["minLr"], message: `${show(p.minLr)} exceeds lr ${show(p.lr)}` })
  if (p.warmupIters !== undefined && p.warmupIters > p.trainIters) {
    issues.push({ path: ["warmupIters"], message: `${p.warmupIters} exceeds trainIters ${p.trainIters}` })
  }
  for (const it of p.saveIters ?? []) {
    if (it > p.trainIters) issues.push({ path: ["saveIters"], message: `${it} exceeds trainIters ${p.trainIters}` })
  }
  if (p.backend === "megatron" && (p.saveIters ?? []).length > 0) {
    issues.push({ path: ["saveIters"], message: "Megatron-LM saves only at multiples of --save-interval" })
  }
  if (p.globalBatchSize % p.microBatchSize !== 0) {
    issues.push({
      path: ["globalBatchSize"],
      message: `${p.globalBatchSize} is not a multiple of microBatchSize ${p.microBatchSize}`
    })
  }
  if (p.backend === "megatron") {
    for (const problem of layoutProblems(p, p.megatron ?? defaultMegatronParams)) {
      issues.push({ path: ["megatron"], message: `Megatron-LM would refuse the layout: ${problem}` })
    }
  }
  return issues
}))
export type TrainParams = typeof TrainParams.Type

export const TrainResult = Schema.Struct({
  finalLoss: Schema.NullOr(Schema.Number),
  iterations: Schema.Number,
  startIteration: Schema.Number,
  tokens: Schema.Number,
  tokensPerSecond: Schema.Number,
  activeParams: Schema.Number,
  totalParams: Schema.Number,
  /** Checkpoints this execution did not compute: kept from its interrupted attempts, or linked from the seed's. */
  reusedCheckpoints: Schema.Array(Schema.String),
  /**
   * The step this execution started from a checkpoint another execution recorded with the same prefix
   * (ctx.seed): what it trained is trainIters - seedIteration. Absent when it started from step 0.
   */
  seedIteration: Schema.optional(Schema.Number)
})

export const train = define({
  kind: "train",
  version: "1",
  params: TrainParams,
  settle: (p, executor) => ({
    ...p,
    backend: p.backend === "megatron" ? p.backend : settleBackend(p.backend, executor)
  }),
  outputs: (p) =>
    Object.fromEntries(
      checkpointSteps({ trainIters: p.trainIters, saveInterval: p.saveInterval, saveIters: p.saveIters }).map((
        step
      ) => [checkpointName(step), "dir" as const])
    ),
  result: TrainResult,
  resources: (p) => {
    if (p.backend !== "megatron") return { cpus: p.threads, gpus: p.backend === "cuda" ? 1 : 0, memoryMb: 2048 }
    // FLAME-MoE's job: --cpus-per-task, --mem and the GPUs of each node (src/megatron/Params.ts).
    return megatronResources(p.megatron ?? defaultMegatronParams)
  },
  // Megatron-LM's code is part of what a run depends on: its training script and package are hashed.
  sources: (p) => {
    if (p.backend !== "megatron") return []
    const m = p.megatron ?? defaultMegatronParams
    const pkg = path.resolve(m.path, "megatron")
    return [path.resolve(m.path, m.script), ...(fs.existsSync(pkg) ? [pkg] : [])]
  },
  resumable: true,
  resumePoint: (workDir) => latestCheckpoint(workDir)?.name,
  // Megatron-LM's checkpoints are not shared: its state depends on a parallel layout this cannot see.
  prefixes: (p, parts) =>
    p.backend === "megatron" ? undefined : trainingPrefixes(
      p,
      parts,
      Object.fromEntries(
        checkpointSteps(p).map((step) => [checkpointName(step), step])
      )
    ),
  // The CPU backend reduces in a fixed order (even across thread counts): byte-identical checkpoints.
  // Other backends reduce in bf16 in a scheduling-dependent order: the same iterations and tokens, and
  // a final loss within 0.02 nats (under 1% of a FLAME-MoE final loss).
  reproducibility: (p) =>
    p.backend === "cpu"
      ? { _tag: "bitwise" }
      : { _tag: "tolerance", metrics: { finalLoss: 0.02, iterations: 0, tokens: 0 } },
  run: (ctx) =>
    Effect.gen(function*() {
      const p = ctx.params
      if (p.backend === "megatron") return yield* trainWithMegatron(ctx, yield* megatronDataPath(ctx))
      // The newest of what earlier attempts kept here and the state the engine seeded this stage with.
      const own = latestCheckpoint(ctx.workDir)
      const seed = ctx.seed
      const resumeFrom = seed !== undefined && (own === undefined || own.iteration < seed.step)
        ? { path: seed.path, name: `${seed.stage} ${path.basename(seed.path)}` }
        : own && { path: `${ctx.workDir}/${own.name}`, name: own.name }
      const reused = fs.readdirSync(ctx.workDir).filter((f) => /^iter_\d{7}$/.test(f)).sort()
      if (resumeFrom) yield* ctx.log(`resuming from ${resumeFrom.name}`)
      const config = yield* writeWorkerConfig(ctx, "train.json", {
        model: p.model,
        train: {
          globalBatchSize: p.globalBatchSize,
          microBatchSize: p.microBatchSize,
          trainIters: p.trainIters,
          lr: p.lr,
          minLr: p.minLr,
          warmupFraction: p.warmupFraction,
          ...(p.warmupIters === undefined ? {} : { warmupIters: p.warmupIters }),
          wsdDecayFraction: p.wsdDecayFraction,
          ...(p.wsdDecayStyle === undefined ? {} : { wsdDecayStyle: p.wsdDecayStyle }),
          weightDecay: p.weightDecay,
          clipGrad: p.clipGrad,
          seed: p.seed,
          saveInterval: p.saveInterval,
          ...(p.saveIters === undefined ? {} : { saveIters: p.saveIters }),
          logInterval: p.logInterval
        },
        data: yield* workerDataConfig(ctx, p.data),
        runtime: {
          threads: ctx.cpus,
          outputDir: ctx.workDir,
          backend: p.backend,
          ...(resumeFrom ? { resumeFrom: resumeFrom.path } : {})
        }
      })
      const result =
        (yield* runWorker(ctx, { file: workerBinary(ctx), args: ["train", "--config", config] })) as Record<
          string,
          unknown
        >
      // Resumed at the final checkpoint: nothing trained here, the earlier attempts' record says how it went.
      const recorded = result.startIteration === p.trainIters ? recordedTraining(ctx, p.trainIters) : undefined
      return {
        finalLoss: recorded?.finalLoss ?? (result.finalLoss as number | null) ?? null,
        iterations: result.iterations as number,
        startIteration: result.startIteration as number,
        tokens: result.tokens as number,
        tokensPerSecond: recorded?.tokensPerSecond ?? result.tokensPerSecond as number,
        activeParams: result.activeParams as number,
        totalParams: result.totalParams as number,
        reusedCheckpoints: reused,
        ...(seed === undefined ? {} : { seedIteration: seed.step })
      }
    })
})
