/**
 * The pretrain_gpt.py command line of a FLAME-MoE run, grouped as FLAME-MoE's scripts group it:
 * model and MoE arguments (configs/model/flame-moe.sh), infrastructure and training arguments
 * (configs/train/flame-moe.sh), data and save arguments (scripts/training/modules/flame-moe_step2.sh).
 * Every flag FLAME-MoE passes is here with the value it passes for the scale; a few Megatron defaults
 * FLAME-MoE relied on are pinned too, because the stage's params carry them (seed, weight decay,
 * clipping, Adam, the WSD decay style, the RoPE base, the tensor-parallel size): a changed param must
 * reach Megatron, and a changed Megatron default must not change the run.
 */
import * as path from "node:path"
import { architecture, training } from "../flame/architecture.ts"
import type { WsdDecayStyle } from "../flame/schema.ts"
import type { MegatronParams } from "./Params.ts"

/** What of a train stage's params Megatron sees (structurally the stage's params). */
export interface MegatronTraining {
  readonly model: {
    readonly hiddenSize: number
    readonly numLayers: number
    readonly numAttentionHeads: number
    readonly ffnHiddenSize: number
    readonly moeFfnHiddenSize: number
    readonly numExperts: number
    readonly topK: number
    readonly sharedExpertSize: number
    readonly moeLayers: string
    readonly seqLength: number
    readonly ropeBase: number
    readonly normEps: number
    readonly initStd: number
    readonly auxLossCoeff: number
    readonly zLossCoeff: number
  }
  readonly data: { readonly split: string; readonly seed: number }
  readonly globalBatchSize: number
  readonly microBatchSize: number
  readonly trainIters: number
  readonly saveInterval: number
  readonly lr: number
  readonly minLr: number
  readonly warmupFraction: number
  /** Absolute warm-up; replaces warmupFraction when set. */
  readonly warmupIters?: number | undefined
  readonly wsdDecayFraction: number
  /** The anneal's shape; FLAME-MoE's is exponential. */
  readonly wsdDecayStyle?: WsdDecayStyle | undefined
  readonly weightDecay: number
  readonly clipGrad: number
  readonly seed: number
}

export interface PretrainPaths {
  /**
   * --data-path: the tokenized dataset's prefix (PREFIX.bin / PREFIX.idx), or FLAME-MoE's blend of
   * one equally weighted prefix per shard, "1.0 P1 1.0 P2 ...".
   */
  readonly dataPath: ReadonlyArray<string>
  /** Checkpoints are saved here and loaded from here: a requeued run continues from the latest. */
  readonly saveDir: string
  /**
   * The wandb experiment name unless `megatron.wandbExpName` sets one: the Slurm job id, as
   * FLAME-MoE's --wandb-exp-name $SLURM_JOB_ID, or the stage id outside Slurm.
   */
  readonly runName: string
}

export interface PretrainArguments {
  readonly model: ReadonlyArray<string>
  readonly moe: ReadonlyArray<string>
  readonly infra: ReadonlyArray<string>
  readonly train: ReadonlyArray<string>
  readonly data: ReadonlyArray<string>
  readonly save: ReadonlyArray<string>
  readonly extra: ReadonlyArray<string>
}

const num = (n: number): string => String(n)

/** --lr-wsd-decay-iters: FLAME-MoE passes $((TRAIN_ITERS / 10)), integer division (the worker does the same). */
export const wsdDecayIters = (trainIters: number, fraction: number): number => Math.floor(trainIters * fraction + 1e-9)

export const pretrainArguments = (
  t: MegatronTraining,
  m: MegatronParams,
  paths: PretrainPaths
): PretrainArguments => {
  const a = architecture
  const model = [
    "--hidden-size",
    num(t.model.hiddenSize),
    "--ffn-hidden-size",
    num(t.model.ffnHiddenSize),
    "--num-layers",
    num(t.model.numLayers),
    "--num-attention-heads",
    num(t.model.numAttentionHeads),
    ...(a.activation === "swiglu" ? ["--swiglu"] : []),
    "--max-position-embeddings",
    num(Math.max(a.maxPositionEmbeddings, t.model.seqLength)),
    "--normalization",
    a.normalization,
    "--norm-epsilon",
    num(t.model.normEps),
    ...(a.untieEmbeddingsAndOutputWeights ? ["--untie-embeddings-and-output-weights"] : []),
    "--position-embedding-type",
    a.positionEmbedding,
    "--rotary-base",
    num(t.model.ropeBase),
    ...(a.bias ? [] : ["--disable-bias-linear"]),
    "--hidden-dropout",
    num(a.hiddenDropout),
    "--attention-dropout",
    num(a.attentionDropout),
    "--init-method-std",
    num(t.model.initStd),
    "--tokenizer-type",
    "HuggingFaceTokenizer",
    "--tokenizer-model",
    m.tokenizerModel
  ]
  const moe = [
    "--moe-ffn-hidden-size",
    num(t.model.moeFfnHiddenSize),
    "--num-experts",
    num(t.model.numExperts),
    "--moe-router-topk",
    num(t.model.topK),
    "--moe-shared-expert-intermediate-size",
    num(t.model.sharedExpertSize),
    "--moe-layer-freq",
    t.model.moeLayers,
    "--moe-router-dtype",
    a.routerDtype,
    ...(a.routerPreSoftmax ? ["--moe-router-pre-softmax"] : []),
    "--moe-router-score-function",
    a.routerScoreFunction,
    "--moe-aux-loss-coeff",
    num(t.model.auxLossCoeff),
    "--moe-z-loss-coeff",
    num(t.model.zLossCoeff)
  ]
  const infra = [
    // Megatron turns sequence parallelism off (with a warning) at tensor parallel 1, and FLAME-MoE dropped
    // the flag; with experts and tensor parallelism Megatron needs it.
    ...(m.tensorParallel > 1 ? ["--sequence-parallel"] : []),
    "--tensor-model-parallel-size",
    num(m.tensorParallel),
    "--pipeline-model-parallel-size",
    num(m.pipelineParallel),
    "--expert-model-parallel-size",
    num(m.expertParallel),
    "--use-distributed-optimizer",
    "--overlap-grad-reduce",
    "--overlap-param-gather",
    "--moe-token-dispatcher-type",
    "alltoall",
    "--distributed-timeout-minutes",
    num(m.distributedTimeoutMinutes),
    ...(training.precision === "bf16" ? ["--bf16"] : [])
  ]
  const train = [
    "--micro-batch-size",
    num(t.microBatchSize),
    "--global-batch-size",
    num(t.globalBatchSize),
    "--lr",
    num(t.lr),
    "--min-lr",
    num(t.minLr),
    "--lr-decay-style",
    training.lrDecayStyle,
    // Megatron refuses both at once; an absolute warm-up replaces the fraction.
    ...(t.warmupIters === undefined
      ? ["--lr-warmup-fraction", num(t.warmupFraction)]
      : ["--lr-warmup-iters", num(t.warmupIters)]),
    "--lr-wsd-decay-iters",
    num(wsdDecayIters(t.trainIters, t.wsdDecayFraction)),
    "--train-iters",
    num(t.trainIters),
    "--lr-wsd-decay-style",
    t.wsdDecayStyle ?? training.lrWsdDecayStyle,
    // Pinned Megatron defaults (see the module comment).
    "--weight-decay",
    num(t.weightDecay),
    "--clip-grad",
    num(t.clipGrad),
    "--adam-beta1",
    num(training.adamBeta1),
    "--adam-beta2",
    num(training.adamBeta2),
    "--adam-eps",
    num(training.adamEps),
    "--seed",
    num(t.seed)
  ]
  const data = [
    "--seq-length",
    num(t.model.seqLength),
    "--data-path",
    ...paths.dataPath,
    "--split",
    t.data.split
  ]
  const save = [
    "--log-interval",
    num(m.logInterval),
    "--log-throughput",
    "--save",
    paths.saveDir,
    "--save-interval",
    num(t.saveInterval),
    "--load",
    paths.saveDir,
    "--eval-interval",
    num(m.evalInterval ?? t.saveInterval),
    ...(m.wandbProject === undefined || m.wandbProject === "" ? [] : [
      "--wandb-save-dir",
      path.resolve(m.wandbSaveDir ?? paths.saveDir),
      "--wandb-project",
      m.wandbProject,
      "--wandb-exp-name",
      m.wandbExpName ?? paths.runName
    ]),
    ...(m.tensorboardDir === null ? [] : [
      "--tensorboard-dir",
      m.tensorboardDir === undefined ? path.join(paths.saveDir, "tensorboard") : path.resolve(m.tensorboardDir)
    ])
  ]
  return { model, moe, infra, train, data, save, extra: m.extraArgs }
}

export const flattenArguments = (a: PretrainArguments): ReadonlyArray<string> => [
  ...a.model,
  ...a.moe,
  ...a.infra,
  ...a.train,
  ...a.data,
  ...a.save,
  ...a.extra
]

/**
 * What Megatron's argument checks would reject, found before a job waits in the queue for it:
 * the parallel layout must divide the GPUs, the experts and the batch.
 */
export const layoutProblems = (t: MegatronTraining, m: MegatronParams): ReadonlyArray<string> => {
  const problems: Array<string> = []
  const world = m.nodes * m.gpusPerNode
  const modelParallel = m.tensorParallel * m.pipelineParallel
  if (world % modelParallel !== 0) {
    problems.push(`${world} GPUs are not divisible by tensor x pipeline parallel = ${modelParallel}`)
    return problems
  }
  const dataParallel = world / modelParallel
  if (dataParallel % m.expertParallel !== 0) {
    problems.push(`data-parallel size ${dataParallel} is not divisible by expertParallel ${m.expertParallel}`)
  }
  if (t.model.numExperts % m.expertParallel !== 0) {
    problems.push(`${t.model.numExperts} experts are not divisible by expertParallel ${m.expertParallel}`)
  }
  if (t.globalBatchSize % (t.microBatchSize * dataParallel) !== 0) {
    problems.push(
      `globalBatchSize ${t.globalBatchSize} is not divisible by microBatchSize x data-parallel size = ` +
        `${t.microBatchSize} x ${dataParallel}`
    )
  }
  if (t.model.numAttentionHeads % m.tensorParallel !== 0) {
    problems.push(
      `${t.model.numAttentionHeads} attention heads are not divisible by tensorParallel ${m.tensorParallel}`
    )
  }
  if (t.model.numLayers % m.pipelineParallel !== 0) {
    problems.push(`${t.model.numLayers} layers are not divisible by pipelineParallel ${m.pipelineParallel}`)
  }
  if (m.wandbProject !== undefined && m.wandbProject !== "" && m.wandbExpName === "") {
    problems.push("wandbExpName is empty: Megatron-LM needs an experiment name for wandb")
  }
  if (t.data.seed !== t.seed) {
    problems.push(
      `data.seed ${t.data.seed} differs from seed ${t.seed}: Megatron-LM orders the data with --seed, so set them equal`
    )
  }
  return problems
}
