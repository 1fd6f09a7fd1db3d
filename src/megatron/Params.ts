/**
 * How a `train` stage with `backend: megatron` runs Megatron-LM: where it is installed, the job's
 * shape (FLAME-MoE trained on 4 nodes x 8 GPUs with expert parallelism 8) and the few settings
 * FLAME-MoE passes that the worker backend has no use for.
 */
import { Schema } from "effect"
import { training } from "../flame/architecture.ts"

const PositiveInt = Schema.Int.pipe(Schema.positive())

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
  rdzvPort: Schema.optional(PositiveInt),
  /** Memory per node for the batch job, MB (FLAME-MoE asked for 1536G); absent: the partition's default. */
  memoryMb: Schema.optional(PositiveInt),
  /** Extra pretrain_gpt.py arguments, appended after the generated ones. */
  extraArgs: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  /** Extra environment for the launcher (NCCL settings and the like). */
  env: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.String }), { default: () => ({}) })
})
export type MegatronParams = typeof MegatronParams.Type

export const defaultMegatronParams: MegatronParams = Schema.decodeUnknownSync(MegatronParams)({})
