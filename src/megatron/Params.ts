/**
 * How a `train` stage with `backend: megatron` runs Megatron-LM: where it is installed, the job's
 * shape and resources (FLAME-MoE trained on 4 nodes x 8 GPUs with expert parallelism 8, and asked
 * Slurm for 208 CPUs, 1536G and 14 days per job), its logging (tensorboard, wandb) and the few
 * settings FLAME-MoE passes that the worker backend has no use for.
 */
import { Schema } from "effect"
import { SlurmTime } from "../domain/Slurm.ts"
import { training } from "../flame/architecture.ts"
import type { Resources } from "../Stage.ts"

const PositiveInt = Schema.Int.pipe(Schema.positive())
const NonNegativeInt = Schema.Int.pipe(Schema.nonNegative())

export const MegatronParams = Schema.Struct({
  /** The Megatron-LM checkout (FLAME-MoE pins one); torchrun runs from here. */
  path: Schema.optionalWith(Schema.String, { default: () => "Megatron-LM" }),
  /** The training script, relative to `path`. */
  script: Schema.optionalWith(Schema.String, { default: () => "pretrain_gpt.py" }),
  /** The torchrun launcher (an executable on PATH or a path). */
  torchrun: Schema.optionalWith(Schema.String, { default: () => "torchrun" }),
  nodes: Schema.optionalWith(PositiveInt, { default: () => 4 }),
  gpusPerNode: Schema.optionalWith(PositiveInt, { default: () => 8 }),
  tensorParallel: Schema.optionalWith(PositiveInt, { default: () => 1 }),
  pipelineParallel: Schema.optionalWith(PositiveInt, { default: () => training.pipelineParallel }),
  expertParallel: Schema.optionalWith(PositiveInt, { default: () => training.expertParallel }),
  /** --tokenizer-model for HuggingFaceTokenizer: a hub name or a local directory. */
  tokenizerModel: Schema.optionalWith(Schema.String, { default: () => "EleutherAI/pythia-12b" }),
  /** --eval-interval; FLAME-MoE evaluates at every save. */
  evalInterval: Schema.optional(PositiveInt),
  /** --log-interval; FLAME-MoE logs every 5 iterations. */
  logInterval: Schema.optionalWith(PositiveInt, { default: () => 5 }),
  distributedTimeoutMinutes: Schema.optionalWith(PositiveInt, { default: () => 30 }),
  /** The c10d rendezvous port on the first node; by default derived from the job id. */
  rdzvPort: Schema.optional(Schema.Int.pipe(Schema.between(1, 65535))),
  /** CPUs per node for the batch job (FLAME-MoE's --cpus-per-task=208). */
  cpusPerTask: Schema.optionalWith(PositiveInt, { default: () => 208 }),
  /** Memory per node for the batch job, MB (FLAME-MoE's --mem=1536G); 0: the partition's default. */
  memoryMb: Schema.optionalWith(NonNegativeInt, { default: () => 1536 * 1024 }),
  /**
   * The batch job's time limit (FLAME-MoE's --time=14-00:00:00); it wins over the global
   * `slurm.time`, a `slurm.stage.<glob>.time` rule wins over it; null: the Slurm settings decide.
   */
  time: Schema.optionalWith(Schema.NullOr(SlurmTime), { default: () => "14-00:00:00" }),
  /**
   * --tensorboard-dir. Absent: `tensorboard/` in the save directory (FLAME-MoE wrote its events into
   * its save directory; a subdirectory keeps them apart from the checkpoints and travels with them);
   * null: no tensorboard.
   */
  tensorboardDir: Schema.optional(Schema.NullOr(Schema.String)),
  /** --wandb-project; absent: no wandb (Megatron's default). FLAME-MoE logged to `flame-moe`. */
  wandbProject: Schema.optional(Schema.String),
  /** --wandb-exp-name (with wandbProject); absent: the Slurm job id, as FLAME-MoE, or the stage id outside Slurm. */
  wandbExpName: Schema.optional(Schema.String),
  /** --wandb-save-dir (with wandbProject); absent: the save directory, as FLAME-MoE (wandb writes `wandb/` there). */
  wandbSaveDir: Schema.optional(Schema.String),
  /** Extra pretrain_gpt.py arguments, appended after the generated ones. */
  extraArgs: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  /**
   * Extra environment for the launcher (NCCL settings, WANDB_ENTITY and the like); it wins over
   * FLAME-MoE's (`flameMoeEnvironment`).
   */
  env: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.String }), { default: () => ({}) })
})
export type MegatronParams = typeof MegatronParams.Type

export const defaultMegatronParams: MegatronParams = Schema.decodeUnknownSync(MegatronParams)({})

/** What FLAME-MoE's step-2 script exports before torchrun (scripts/training/modules/flame-moe_step2.sh). */
export const flameMoeEnvironment: Readonly<Record<string, string>> = {
  OMP_NUM_THREADS: "16",
  TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD: "true",
  TORCH_NCCL_TRACE_BUFFER_SIZE: "8",
  TORCH_NCCL_DUMP_ON_TIMEOUT: "1"
}

/** A Megatron stage's job resources per node: the batch job's --nodes, --cpus-per-task, --mem, --gres=gpu:N. */
export const megatronResources = (m: MegatronParams): Resources => ({
  nodes: m.nodes,
  cpus: m.cpusPerTask,
  gpus: m.gpusPerNode,
  memoryMb: m.memoryMb
})
