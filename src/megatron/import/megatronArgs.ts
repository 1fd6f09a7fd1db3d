/**
 * The model a Megatron-LM checkpoint holds, read from the training arguments it stores (`args` in
 * common.pt or model_optim_rng.pt), and the checks that it is FLAME-MoE's architecture: anything
 * the worker does not compute the same way (GQA, qk-layernorm, biases, another router, another
 * activation or norm...) is refused with the setting's name, since importing it would give a model
 * that silently computes something else. docs/megatron-checkpoints.md lists the settings.
 */
import type { MegatronTraining } from "../Arguments.ts"
import { isPyObject } from "./torchPickle.ts"

/**
 * The worker's model params (stages/flame/model.ts ModelParams) as a checkpoint determines them: what
 * a Megatron run is given (Arguments.ts), plus the padded vocabulary Megatron derives.
 */
export type ImportedModel = MegatronTraining["model"] & { readonly vocabSize: number }

/** How the checkpoint was laid out when it was written: which names and shapes to expect. */
export interface CheckpointLayout {
  /** transformer_engine: fused layer_norm_weight in linear_qkv (and the dense fc1); local: separate norms. */
  readonly transformerImpl: "transformer_engine" | "local"
  readonly moeGroupedGemm: boolean
  readonly moeUseLegacyGroupedGemm: boolean
  readonly expertParallel: number
  readonly tensorParallel: number
  readonly pipelineParallel: number
}

export interface MegatronArgs {
  readonly model: ImportedModel
  readonly layout: CheckpointLayout
  /** Per layer: true when it is an MoE layer. */
  readonly moePattern: ReadonlyArray<boolean>
  readonly iteration: number | undefined
  readonly consumedSamples: number | undefined
  readonly globalBatchSize: number | undefined
}

export class ArgsError extends Error {}

type Args = Record<string, unknown>

const has = (a: Args, k: string) => a[k] !== undefined && a[k] !== null

const int = (a: Args, k: string, fallback?: number): number => {
  const v = a[k] ?? fallback
  if (typeof v !== "number" || !Number.isInteger(v)) {
    throw new ArgsError(`args.${k} is ${v === undefined ? "missing" : JSON.stringify(v)}; an integer is needed`)
  }
  return v
}

const num = (a: Args, k: string, fallback?: number): number => {
  const v = a[k] ?? fallback
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new ArgsError(`args.${k} is ${v === undefined ? "missing" : JSON.stringify(v)}; a number is needed`)
  }
  return v
}

/** "[0]*1+[1]*8" for [false, true x 8]: the form FLAME-MoE's scripts pass as --moe-layer-freq. */
export const patternString = (pattern: ReadonlyArray<boolean>): string => {
  const runs: Array<[number, number]> = []
  for (const moe of pattern) {
    const bit = moe ? 1 : 0
    const last = runs[runs.length - 1]
    if (last !== undefined && last[0] === bit) last[1]++
    else runs.push([bit, 1])
  }
  return runs.map(([bit, n]) => `[${bit}]*${n}`).join("+")
}

/** args.moe_layer_freq after Megatron's moe_freq_type: an int N (every N-th layer from 0) or a list of 0/1. */
const moePatternOf = (a: Args, numLayers: number): Array<boolean> => {
  const f = a.moe_layer_freq ?? 1
  if (typeof f === "number" && Number.isInteger(f) && f >= 1) {
    return Array.from({ length: numLayers }, (_, i) => i % f === 0)
  }
  if (Array.isArray(f) && f.every((x) => x === 0 || x === 1)) {
    if (f.length !== numLayers) {
      throw new ArgsError(`args.moe_layer_freq describes ${f.length} layers, args.num_layers is ${numLayers}`)
    }
    return f.map((x) => x === 1)
  }
  throw new ArgsError(`args.moe_layer_freq is ${JSON.stringify(f)}; an integer or a list of 0/1 is needed`)
}

/**
 * Settings whose FLAME-MoE value the worker's math assumes: [arg, what is required, the check].
 * Absent settings are Megatron's defaults (older Megatron versions lacked some), which are fine.
 */
const requirements: ReadonlyArray<readonly [string, string, (v: unknown) => boolean]> = [
  ["swiglu", "true (SwiGLU MLPs)", (v) => v === true],
  ["normalization", "RMSNorm", (v) => v === "RMSNorm"],
  ["position_embedding_type", "rope", (v) => v === "rope"],
  ["untie_embeddings_and_output_weights", "true (a separate output layer)", (v) => v === true],
  ["add_bias_linear", "false (no biases)", (v) => v === false],
  ["add_qkv_bias", "false (no q/k/v biases)", (v) => v === undefined || v === null || v === false],
  ["group_query_attention", "false (no grouped-query attention)", (v) => v === undefined || v === null || v === false],
  ["qk_layernorm", "false (no q/k layernorm)", (v) => v === undefined || v === null || v === false],
  ["multi_latent_attention", "false", (v) => v === undefined || v === null || v === false],
  ["apply_layernorm_1p", "false", (v) => v === undefined || v === null || v === false],
  ["rotary_interleaved", "false (rotate-half RoPE)", (v) => v === undefined || v === null || v === false],
  ["rotary_percent", "1.0", (v) => v === undefined || v === null || v === 1],
  ["rotary_scaling_factor", "1.0", (v) => v === undefined || v === null || v === 1],
  ["use_rope_scaling", "false", (v) => v === undefined || v === null || v === false],
  ["rotary_seq_len_interpolation_factor", "unset", (v) => v === undefined || v === null || v === 1],
  ["moe_router_pre_softmax", "true (softmax over all experts, then top-k)", (v) => v === true],
  ["moe_router_score_function", "softmax", (v) => v === undefined || v === null || v === "softmax"],
  [
    "moe_router_topk_scaling_factor",
    "unset (gates are the softmax probabilities)",
    (v) => v === undefined || v === null || v === 1
  ],
  ["moe_router_enable_expert_bias", "false", (v) => v === undefined || v === null || v === false],
  ["moe_router_num_groups", "unset (no group-limited routing)", (v) => v === undefined || v === null],
  ["moe_router_group_topk", "unset", (v) => v === undefined || v === null],
  ["moe_expert_capacity_factor", "unset (dropless)", (v) => v === undefined || v === null],
  ["moe_shared_expert_gate", "false (no shared-expert gate)", (v) => v === undefined || v === null || v === false],
  ["num_experts", "set (an MoE model)", (v) => typeof v === "number" && v > 0]
]

/** Reads a checkpoint's args; throws ArgsError naming the first setting FLAME-MoE's architecture does not have. */
export const readMegatronArgs = (
  args: unknown,
  stored: { readonly iteration?: unknown }
): MegatronArgs => {
  if (!isPyObject(args, "argparse.Namespace")) {
    throw new ArgsError("the checkpoint stores no Megatron args (argparse.Namespace under 'args')")
  }
  const a = args.fields as Args
  for (const [key, required, ok] of requirements) {
    if (!ok(a[key])) {
      throw new ArgsError(
        `args.${key} is ${JSON.stringify(a[key] ?? null)}, but FLAME-MoE's architecture has ${required}; ` +
          "the worker cannot compute this model"
      )
    }
  }
  const heads = int(a, "num_attention_heads")
  const hidden = int(a, "hidden_size")
  if (has(a, "kv_channels") && int(a, "kv_channels") * heads !== hidden) {
    throw new ArgsError(`args.kv_channels ${String(a.kv_channels)} x ${heads} heads is not hidden_size ${hidden}`)
  }
  if (has(a, "num_query_groups") && a.group_query_attention === true) {
    throw new ArgsError("args.num_query_groups: grouped-query attention is not FLAME-MoE's")
  }
  const numLayers = int(a, "num_layers")
  const moePattern = moePatternOf(a, numLayers)
  const moeFfn = int(a, "moe_ffn_hidden_size", a.ffn_hidden_size as number)
  const shared = has(a, "moe_shared_expert_intermediate_size") ? int(a, "moe_shared_expert_intermediate_size") : 0
  const vocab = has(a, "padded_vocab_size") ? int(a, "padded_vocab_size") : undefined
  if (vocab === undefined) throw new ArgsError("args.padded_vocab_size is missing; the vocabulary size is unknown")
  const iteration = typeof stored.iteration === "number" ? stored.iteration : undefined
  const impl = (a.transformer_impl ?? "transformer_engine") as string
  if (impl !== "transformer_engine" && impl !== "local") {
    throw new ArgsError(`args.transformer_impl is ${impl}; transformer_engine or local is needed`)
  }
  const model: ImportedModel = {
    vocabSize: vocab,
    hiddenSize: hidden,
    numLayers,
    numAttentionHeads: heads,
    ffnHiddenSize: int(a, "ffn_hidden_size"),
    moeFfnHiddenSize: moeFfn,
    numExperts: int(a, "num_experts"),
    topK: int(a, "moe_router_topk", 2),
    sharedExpertSize: shared,
    moeLayers: patternString(moePattern),
    seqLength: int(a, "seq_length"),
    ropeBase: num(a, "rotary_base", 10000),
    normEps: num(a, "norm_epsilon", 1e-5),
    initStd: num(a, "init_method_std", 0.02),
    auxLossCoeff: num(a, "moe_aux_loss_coeff", 0),
    zLossCoeff: num(a, "moe_z_loss_coeff", 0)
  }
  if (model.topK > model.numExperts) {
    throw new ArgsError(`args.moe_router_topk ${model.topK} exceeds args.num_experts ${model.numExperts}`)
  }
  if (model.numExperts > 256) throw new ArgsError(`args.num_experts ${model.numExperts}: at most 256 are supported`)
  return {
    model,
    layout: {
      transformerImpl: impl,
      moeGroupedGemm: a.moe_grouped_gemm === true,
      moeUseLegacyGroupedGemm: a.moe_use_legacy_grouped_gemm === true,
      expertParallel: int(a, "expert_model_parallel_size", 1),
      tensorParallel: int(a, "tensor_model_parallel_size", 1),
      pipelineParallel: int(a, "pipeline_model_parallel_size", 1)
    },
    moePattern,
    iteration,
    consumedSamples: typeof a.consumed_train_samples === "number" ? a.consumed_train_samples : undefined,
    globalBatchSize: typeof a.global_batch_size === "number" ? a.global_batch_size : undefined
  }
}
