/**
 * From Megatron-core's GPT model to the worker's tensors (kernels/src/model.cpp): which Megatron key
 * and which region of it each worker tensor is, and the one layout change on the way, linear_qkv's
 * per-head interleaving. docs/megatron-checkpoints.md lists every row with its source.
 *
 * Keys come in two forms. A model whose layers are not all alike (FLAME-MoE: a dense first layer)
 * stores each layer under its global layer number, `decoder.layers.<l>.<name>`; a homogeneous model
 * stacks its layers along a leading axis of `decoder.layers.<name>`. Both are accepted.
 */
import type { ImportedModel } from "./megatronArgs.ts"
import type { Region, SourceTensor, WorkerDtype } from "./tensorSource.ts"
import { AssembleError, assembleRegion, workerDtype } from "./tensorSource.ts"
import { dtypeBytes } from "./torchPickle.ts"

export interface WorkerTensor {
  readonly name: string
  readonly shape: ReadonlyArray<number>
}

/** The worker's tensors for a model, in the order its checkpoints store them (Model::Model). */
export const workerTensors = (m: ImportedModel, moePattern: ReadonlyArray<boolean>): Array<WorkerTensor> => {
  const h = m.hiddenSize
  const out: Array<WorkerTensor> = [{ name: "embedding.weight", shape: [m.vocabSize, h] }]
  moePattern.forEach((moe, l) => {
    const p = `layers.${l}.`
    out.push({ name: `${p}attn_norm.weight`, shape: [h] })
    out.push({ name: `${p}attn.qkv.weight`, shape: [3 * h, h] })
    out.push({ name: `${p}attn.proj.weight`, shape: [h, h] })
    out.push({ name: `${p}mlp_norm.weight`, shape: [h] })
    if (moe) {
      out.push({ name: `${p}moe.router.weight`, shape: [m.numExperts, h] })
      out.push({ name: `${p}moe.experts.fc1.weight`, shape: [m.numExperts, 2 * m.moeFfnHiddenSize, h] })
      out.push({ name: `${p}moe.experts.fc2.weight`, shape: [m.numExperts, h, m.moeFfnHiddenSize] })
      if (m.sharedExpertSize > 0) {
        out.push({ name: `${p}moe.shared.fc1.weight`, shape: [2 * m.sharedExpertSize, h] })
        out.push({ name: `${p}moe.shared.fc2.weight`, shape: [h, m.sharedExpertSize] })
      }
    } else {
      out.push({ name: `${p}mlp.fc1.weight`, shape: [2 * m.ffnHiddenSize, h] })
      out.push({ name: `${p}mlp.fc2.weight`, shape: [h, m.ffnHiddenSize] })
    }
  })
  out.push({ name: "final_norm.weight", shape: [h] })
  out.push({ name: "output.weight", shape: [m.vocabSize, h] })
  return out
}

/** Megatron names a worker tensor may come from, tried in order (TE spec's fused norms, then separate norms). */
const sources = (name: string): { layer: number | undefined; candidates: ReadonlyArray<string> } => {
  const global: Record<string, ReadonlyArray<string>> = {
    "embedding.weight": ["embedding.word_embeddings.weight"],
    "final_norm.weight": ["decoder.final_layernorm.weight"],
    "output.weight": ["output_layer.weight"]
  }
  if (global[name]) return { layer: undefined, candidates: global[name] }
  const m = /^layers\.(\d+)\.(.+)$/.exec(name)!
  const perLayer: Record<string, ReadonlyArray<string>> = {
    "attn_norm.weight": ["self_attention.linear_qkv.layer_norm_weight", "input_layernorm.weight"],
    "attn.qkv.weight": ["self_attention.linear_qkv.weight"],
    "attn.proj.weight": ["self_attention.linear_proj.weight"],
    "mlp_norm.weight": ["pre_mlp_layernorm.weight", "mlp.linear_fc1.layer_norm_weight"],
    "mlp.fc1.weight": ["mlp.linear_fc1.weight"],
    "mlp.fc2.weight": ["mlp.linear_fc2.weight"],
    "moe.router.weight": ["mlp.router.weight"],
    "moe.experts.fc1.weight": ["mlp.experts.experts.linear_fc1.weight"],
    "moe.experts.fc2.weight": ["mlp.experts.experts.linear_fc2.weight"],
    "moe.shared.fc1.weight": ["mlp.shared_experts.linear_fc1.weight"],
    "moe.shared.fc2.weight": ["mlp.shared_experts.linear_fc2.weight"]
  }
  return { layer: Number(m[1]), candidates: perLayer[m[2]!]! }
}

/**
 * Megatron's linear_qkv rows are grouped per query group: [ng, (np/ng + 2) * d, h], i.e. without GQA
 * q_i, k_i, v_i of head i one after another. The worker keeps all q rows, then all k, then all v.
 * `w` holds the [3h, h] rows of `item`-byte elements.
 */
export const qkvToWorker = (w: Uint8Array, heads: number, hidden: number, item: number): Uint8Array => {
  const d = hidden / heads
  const out = new Uint8Array(w.length)
  const rowBytes = hidden * item
  for (let head = 0; head < heads; head++) {
    for (let part = 0; part < 3; part++) {
      const src = (head * 3 + part) * d * rowBytes
      const dst = (part * hidden + head * d) * rowBytes
      out.set(w.subarray(src, src + d * rowBytes), dst)
    }
  }
  return out
}

export class MappingError extends Error {
  constructor(readonly tensor: string, readonly file: string | undefined, message: string) {
    super(message)
  }
}

export interface Resolved {
  /** The Megatron key read. */
  readonly key: string
  /** The dtype the worker tensor is written in (the stored one; float16 becomes float32). */
  readonly dtype: WorkerDtype
  /** Rows are reordered (linear_qkv): the tensor can only be read whole. */
  readonly permutes: boolean
  /**
   * Assembles the tensor, or rows [first, first + count) of it (slices along its first dimension),
   * into `into` when it is large enough.
   */
  readonly read: (into?: Uint8Array, rows?: { readonly first: number; readonly count: number }) => Promise<Region>
}

/** Finds where a worker tensor is in the checkpoint; `used` collects the Megatron keys read. */
export const resolve = (
  tensor: WorkerTensor,
  tensors: ReadonlyMap<string, SourceTensor>,
  model: ImportedModel,
  used: Set<string>
): Resolved => {
  const { candidates, layer } = sources(tensor.name)
  for (const c of candidates) {
    const perLayer = layer === undefined ? c : `decoder.layers.${layer}.${c}`
    const stacked = layer === undefined ? undefined : `decoder.layers.${c}`
    const direct = tensors.get(perLayer)
    const viaStack = stacked === undefined ? undefined : tensors.get(stacked)
    const source = direct ?? viaStack
    if (source === undefined) continue
    const leading = direct === undefined ? [layer!] : []
    used.add(source.key)
    const expected = [...leading.map(() => model.numLayers), ...tensor.shape]
    const permutes = tensor.name.endsWith("attn.qkv.weight")
    const read = async (into?: Uint8Array, rows?: { readonly first: number; readonly count: number }) => {
      if (
        source.size.length !== expected.length || source.size.some((s, i) => i >= leading.length && s !== expected[i])
      ) {
        throw new MappingError(
          source.key,
          undefined,
          `has shape [${source.size.join(", ")}], but the stored args give [${expected.join(", ")}] for ${tensor.name}`
        )
      }
      const [first, count] = rows === undefined ? [0, tensor.shape[0]!] : [rows.first, rows.count]
      if (permutes && (first !== 0 || count !== tensor.shape[0])) {
        throw new Error(`internal: ${tensor.name} is read whole`)
      }
      const start = [...leading, first, ...tensor.shape.slice(1).map(() => 0)]
      const extent = [...leading.map(() => 1), count, ...tensor.shape.slice(1)]
      let w: Region
      try {
        w = await assembleRegion(source, start, extent, into)
      } catch (e) {
        if (e instanceof AssembleError) throw new MappingError(source.key, e.file, e.message)
        throw e
      }
      if (!permutes) return w
      const item = dtypeBytes[w.dtype]
      return { dtype: w.dtype, bytes: qkvToWorker(w.bytes, model.numAttentionHeads, model.hiddenSize, item) }
    }
    return { key: source.key, dtype: workerDtype(source.dtype), permutes, read }
  }
  throw new MappingError(
    candidates.map((c) => (layer === undefined ? c : `decoder.layers.${layer}.${c}`)).join(" or "),
    undefined,
    `is missing: the checkpoint has no weight for the worker's ${tensor.name}`
  )
}
