/**
 * Python pickles as PyTorch and Megatron-LM write them (torch.save's data.pkl, the distributed
 * checkpoint's .metadata, common.pt), decoded with the `pickleparser` package into plain values.
 *
 * A pickle names the classes to rebuild it with. Only the classes these files contain are accepted
 * (the allow-list below); any other name stops decoding with an error naming it, so a crafted file
 * cannot make us build anything we did not expect. Nothing is executed either way: each allowed
 * name maps to an inert JavaScript stand-in.
 */
import { NameRegistry, Parser } from "pickleparser"

/** Element types of torch storages and dtypes, spelt as safetensors spells them. */
export type TorchDtype = "BF16" | "F16" | "F32" | "F64" | "U8" | "I8" | "I16" | "I32" | "I64" | "BOOL"

export const dtypeBytes: Record<TorchDtype, number> = {
  BF16: 2,
  F16: 2,
  F32: 4,
  F64: 8,
  U8: 1,
  I8: 1,
  I16: 2,
  I32: 4,
  I64: 8,
  BOOL: 1
}

/** A storage a torch.save pickle refers to by persistent id: the zip entry `data/<key>`. */
export interface StorageRef {
  readonly _tag: "StorageRef"
  readonly dtype: TorchDtype
  readonly key: string
  readonly numel: number
}

/** A tensor as torch._utils._rebuild_tensor_v2 describes it: a view of a storage. */
export interface TensorRef {
  readonly _tag: "TensorRef"
  readonly storage: StorageRef
  readonly offset: number
  readonly size: ReadonlyArray<number>
  readonly stride: ReadonlyArray<number>
}

/** torch.bfloat16 and friends. */
export interface DtypeMarker {
  readonly _tag: "Dtype"
  readonly dtype: TorchDtype
}

/** A Python object rebuilt from its class name and state (dataclasses, argparse.Namespace, enums). */
export class PyObject {
  readonly _tag = "PyObject"
  className = ""
  /** `__dict__` of the object, or the value its __setstate__ received. */
  fields: Record<string, unknown> = {}
  state: unknown = undefined
  args: ReadonlyArray<unknown> = []
  __setstate__(state: unknown) {
    if (state instanceof Map) this.fields = Object.fromEntries(state)
    else if (Array.isArray(state) && state.length === 2 && (state[0] === null || state[0] instanceof Map)) {
      // (dict_state, slots_state), as objects with __slots__ pickle.
      this.fields = { ...Object.fromEntries(state[0] ?? []), ...Object.fromEntries(state[1] ?? []) }
    } else this.state = state
  }
}

export class PickleError extends Error {}

const storageTypes: Record<string, TorchDtype> = {
  BFloat16Storage: "BF16",
  HalfStorage: "F16",
  FloatStorage: "F32",
  DoubleStorage: "F64",
  ByteStorage: "U8",
  CharStorage: "I8",
  ShortStorage: "I16",
  IntStorage: "I32",
  LongStorage: "I64",
  BoolStorage: "BOOL",
  UntypedStorage: "U8"
}

const dtypes: Record<string, TorchDtype> = {
  bfloat16: "BF16",
  float16: "F16",
  half: "F16",
  float32: "F32",
  float: "F32",
  float64: "F64",
  double: "F64",
  uint8: "U8",
  int8: "I8",
  int16: "I16",
  int32: "I32",
  int64: "I64",
  long: "I64",
  bool: "BOOL"
}

/** A class stand-in: constructible (NEWOBJ) and callable (REDUCE), remembering its name. */
const pyClass = (qualified: string) => {
  const make = (args: ReadonlyArray<unknown>) => {
    const o = new PyObject()
    o.className = qualified
    o.args = args
    return o
  }
  return function(this: unknown, ...args: Array<unknown>) {
    return make(args)
  } as unknown as new(...args: Array<unknown>) => PyObject
}

/**
 * Module-level names the checkpoints of Megatron-LM (torch_dist and legacy) refer to. Classes of
 * torch.distributed.checkpoint's metadata, argparse.Namespace (Megatron's args), Megatron's and
 * numpy's small value types that appear in args, RNG states and optimizer state.
 */
const allowedClasses = [
  "argparse.Namespace",
  "torch.distributed.checkpoint.metadata.Metadata",
  "torch.distributed.checkpoint.metadata.TensorStorageMetadata",
  "torch.distributed.checkpoint.metadata.BytesStorageMetadata",
  "torch.distributed.checkpoint.metadata.ChunkStorageMetadata",
  "torch.distributed.checkpoint.metadata.TensorProperties",
  "torch.distributed.checkpoint.metadata.MetadataIndex",
  "torch.distributed.checkpoint.metadata.StorageMeta",
  "torch.distributed.checkpoint.metadata._MEM_FORMAT_ENCODING",
  "torch.distributed.checkpoint.filesystem._StorageInfo",
  "torch.distributed.checkpoint.filesystem._StoragePrefix",
  "torch.distributed.checkpoint._extension.StreamTransformExtension",
  // Older torch 2.x pickles TensorProperties from its sharded-tensor module.
  "torch.distributed._shard.sharded_tensor.metadata.TensorProperties",
  "torch.distributed._shard.sharded_tensor.metadata.MEM_FORMAT_ENCODING",
  // Megatron keeps every rank's save plan in the metadata (all_local_plans).
  "megatron.core.dist_checkpointing.strategies.torch.MCoreSavePlan",
  "torch.distributed.checkpoint.planner.SavePlan",
  "torch.distributed.checkpoint.planner.WriteItem",
  "torch.distributed.checkpoint.planner.WriteItemType",
  "torch.distributed.checkpoint.planner.TensorWriteData",
  // Transformer Engine's _extra_state in legacy checkpoints.
  "_io.BytesIO",
  "torch.device",
  "torch.memory_format",
  "torch.layout",
  "numpy.dtype",
  "numpy.ndarray",
  "numpy.core.multiarray._reconstruct",
  "numpy.core.multiarray.scalar",
  "numpy._core.multiarray._reconstruct",
  "numpy._core.multiarray.scalar",
  "megatron.core.enums.ModelType",
  "megatron.core.transformer.enums.AttnBackend",
  "megatron.core.transformer.enums.AttnMaskType",
  "megatron.core.rerun_state_machine.RerunMode",
  "megatron.core.rerun_state_machine.RerunState",
  "megatron.core.rerun_state_machine.RerunDiagnostic",
  "megatron.core.dist_checkpointing.mapping.ShardedObject",
  "megatron.core.optimizer.optimizer_config.OptimizerConfig",
  "megatron.core.transformer.transformer_config.TransformerConfig",
  "builtins.slice",
  "builtins.set",
  "builtins.frozenset",
  "builtins.complex",
  "pathlib.PosixPath",
  "copyreg._reconstructor",
  "builtins.object"
]

class AllowList extends NameRegistry {
  override onMissingName(module: string, name: string): never {
    throw new PickleError(
      `refers to ${module}.${name}, which is not among the classes a Megatron-LM or PyTorch checkpoint holds`
    )
  }
}

const registry = (storages: Map<string, StorageRef> | undefined): AllowList => {
  const r = new AllowList()
  for (const q of allowedClasses) {
    const dot = q.lastIndexOf(".")
    r.register(q.slice(0, dot), q.slice(dot + 1), pyClass(q))
  }
  r.register("collections", "OrderedDict", (items?: ReadonlyArray<[unknown, unknown]>) => new Map(items ?? []))
  r.register("torch", "Size", (dims: ReadonlyArray<number>) => [...dims])
  for (const [name, dtype] of Object.entries(dtypes)) {
    r.register("torch", name, { _tag: "Dtype", dtype } as unknown as () => DtypeMarker)
  }
  for (const [name, dtype] of Object.entries(storageTypes)) {
    r.register("torch", name, { _tag: "StorageType", dtype } as unknown as () => unknown)
  }
  for (const name of ["strided", "sparse_coo", "contiguous_format", "channels_last", "preserve_format"]) {
    r.register("torch", name, { _tag: "TorchConstant", name } as unknown as () => unknown)
  }
  // torch.strided pickles as torch.serialization._get_layout("torch.strided").
  r.register("torch.serialization", "_get_layout", (name: string) => ({ _tag: "TorchConstant", name }))
  // Enum members pickle as getattr(EnumClass, "NAME") (Python 3.11+; `__builtin__` at protocol 2). Only
  // attributes of the allowed classes' stand-ins are looked up: the member becomes a PyObject naming it.
  const getattr = (cls: unknown, name: unknown) => {
    if (typeof cls !== "function" || typeof name !== "string") {
      throw new PickleError("calls getattr on something other than an allowed class")
    }
    const member = (cls as (...a: Array<unknown>) => PyObject)()
    member.state = name
    return member
  }
  // Protocol 2 writes Python 3 bytes as _codecs.encode(text, "latin1").
  r.register("_codecs", "encode", (text: unknown, encoding: unknown) => {
    if (typeof text !== "string" || (encoding !== "latin1" && encoding !== "latin-1")) {
      throw new PickleError("calls _codecs.encode other than as protocol 2 encodes bytes")
    }
    return Uint8Array.from(text, (c) => c.charCodeAt(0))
  })
  r.register("builtins", "getattr", getattr)
  r.register("__builtin__", "getattr", getattr)
  const rebuild = (
    storage: StorageRef,
    offset: number,
    size: ReadonlyArray<number>,
    stride: ReadonlyArray<number>
  ): TensorRef => {
    if (storage?._tag !== "StorageRef") throw new PickleError("rebuilds a tensor from something that is not a storage")
    return { _tag: "TensorRef", storage, offset, size: [...size], stride: [...stride] }
  }
  const noTensor = () => {
    throw new PickleError("holds a tensor where none is expected")
  }
  r.register("torch._utils", "_rebuild_tensor_v2", storages === undefined ? noTensor : rebuild)
  r.register("torch._utils", "_rebuild_tensor", storages === undefined ? noTensor : rebuild)
  r.register("torch._utils", "_rebuild_parameter", (t: TensorRef) => t)
  r.register("torch._utils", "_rebuild_parameter_with_state", (t: TensorRef) => t)
  return r
}

/**
 * Decodes a pickle. `storages`, when given, collects the storages torch.save's persistent ids name
 * (('storage', <StorageType>, key, location, numel)); without it a persistent id is an error.
 */
export const unpickle = (bytes: Uint8Array, storages?: Map<string, StorageRef>): unknown => {
  const parser = new Parser({
    nameResolver: registry(storages),
    unpicklingTypeOfDictionary: "Map",
    unpicklingTypeOfSet: "array",
    persistentResolver: {
      resolve: (pid: unknown) => {
        if (storages === undefined) throw new PickleError("has a persistent id where none is expected")
        const id = pid as ReadonlyArray<unknown>
        const type = id?.[1] as { _tag?: string; dtype?: TorchDtype } | undefined
        if (!Array.isArray(id) || id[0] !== "storage" || type?._tag !== "StorageType" || typeof id[2] !== "string") {
          throw new PickleError(`has a persistent id that is not a torch storage: ${JSON.stringify(pid)}`)
        }
        const ref: StorageRef = { _tag: "StorageRef", dtype: type.dtype!, key: id[2], numel: Number(id[4]) }
        storages.set(ref.key, ref)
        return ref
      }
    },
    extensionResolver: {
      resolve: (code: number) => {
        throw new PickleError(`uses extension code ${code}, which checkpoints do not`)
      }
    }
  })
  try {
    return parser.parse(bytes)
  } catch (e) {
    if (e instanceof PickleError) throw e
    throw new PickleError(`is not a readable pickle (${e instanceof Error ? e.message : String(e)})`)
  }
}

export const isTensorRef = (v: unknown): v is TensorRef =>
  typeof v === "object" && v !== null && (v as { _tag?: unknown })._tag === "TensorRef"

export const isPyObject = (v: unknown, className?: string): v is PyObject =>
  v instanceof PyObject && (className === undefined || v.className === className)

/** A field of a rebuilt object or a key of a dict, whichever the value is. */
export const field = (v: unknown, key: string): unknown => {
  if (v instanceof Map) return v.get(key)
  if (v instanceof PyObject) return v.fields[key]
  return undefined
}
