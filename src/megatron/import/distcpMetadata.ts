/**
 * The `.metadata` file of a PyTorch distributed checkpoint (torch.distributed.checkpoint, as
 * Megatron-core's torch_dist strategy writes it): a pickled `Metadata` whose
 * `state_dict_metadata` gives every key's global size, dtype and chunks (offsets and sizes in the
 * global tensor), and whose `storage_data` says where each chunk is: a .distcp file, a byte offset
 * and a length. docs/megatron-checkpoints.md describes the classes.
 */
import type { TorchDtype } from "./torchPickle.ts"
import { field, isPyObject, PickleError, PyObject, unpickle } from "./torchPickle.ts"

export interface StorageLocation {
  readonly file: string
  readonly offset: number
  readonly length: number
}

export interface TensorChunk {
  readonly offsets: ReadonlyArray<number>
  readonly sizes: ReadonlyArray<number>
  readonly location: StorageLocation
}

export interface TensorEntry {
  readonly _tag: "Tensor"
  readonly key: string
  readonly dtype: TorchDtype
  readonly size: ReadonlyArray<number>
  readonly chunks: ReadonlyArray<TensorChunk>
}

/** A pickled object stored as bytes (Transformer Engine's _extra_state, Megatron's ShardedObjects). */
export interface BytesEntry {
  readonly _tag: "Bytes"
  readonly key: string
  readonly location: StorageLocation | undefined
}

export type Entry = TensorEntry | BytesEntry

const fail = (reason: string): never => {
  throw new PickleError(reason)
}

const intArray = (v: unknown, what: string): Array<number> => {
  if (!Array.isArray(v) || v.some((x) => typeof x !== "number" || !Number.isInteger(x) || x < 0)) {
    return fail(`${what} is not a list of non-negative integers`)
  }
  return v as Array<number>
}

/** TensorProperties pickles its state as a tuple (dtype, layout, requires_grad, memory format, pin_memory). */
const dtypeOf = (properties: unknown, key: string): TorchDtype => {
  const raw = isPyObject(properties) ?
    (Array.isArray(properties.state) ? properties.state[0] : properties.fields.dtype) :
    undefined
  const dtype = raw as { _tag?: string; dtype?: TorchDtype } | undefined
  if (dtype?._tag !== "Dtype") return fail(`${key}: its TensorProperties carry no dtype`)
  return dtype.dtype!
}

const locationOf = (info: unknown, where: string): StorageLocation => {
  if (!isPyObject(info, "torch.distributed.checkpoint.filesystem._StorageInfo")) {
    return fail(`${where}: storage entry is not a _StorageInfo`)
  }
  const file = info.fields.relative_path
  const offset = info.fields.offset
  const length = info.fields.length
  if (
    typeof file !== "string" || typeof offset !== "number" || typeof length !== "number" || offset < 0 || length < 0
  ) {
    return fail(`${where}: storage entry lacks relative_path, offset or length`)
  }
  const transforms = info.fields.transform_descriptors
  if (Array.isArray(transforms) && transforms.length > 0) {
    return fail(`${where}: stored with transforms ${JSON.stringify(transforms)}, which are not read`)
  }
  if (file.includes("/") || file.startsWith(".")) return fail(`${where}: storage file ${file} is not a plain name`)
  return { file, offset, length }
}

const indexKey = (fqn: string, offset: ReadonlyArray<number> | undefined): string =>
  offset === undefined ? fqn : `${fqn}@${offset.join(",")}`

/** Decodes a .metadata file into its entries, each chunk with its storage location. */
export const parseDistcpMetadata = (bytes: Uint8Array): ReadonlyMap<string, Entry> => {
  const meta = unpickle(bytes)
  if (!isPyObject(meta, "torch.distributed.checkpoint.metadata.Metadata")) {
    return fail("is not a torch.distributed.checkpoint Metadata")
  }
  const sdm = field(meta, "state_dict_metadata")
  const storage = field(meta, "storage_data")
  if (!(sdm instanceof Map) || !(storage instanceof Map)) {
    return fail("Metadata lacks state_dict_metadata or storage_data")
  }
  // storage_data is keyed by MetadataIndex(fqn, offset, index): chunks are found by fqn and offsets.
  const locations = new Map<string, StorageLocation>()
  for (const [index, info] of storage) {
    if (!(index instanceof PyObject)) fail("storage_data is not keyed by MetadataIndex")
    const fqn = field(index, "fqn")
    if (typeof fqn !== "string") return fail("a MetadataIndex has no fqn")
    const offset = field(index, "offset")
    const key = indexKey(fqn, offset === null || offset === undefined ? undefined : intArray(offset, `${fqn} offset`))
    locations.set(key, locationOf(info, fqn))
  }
  const out = new Map<string, Entry>()
  for (const [key, md] of sdm) {
    if (typeof key !== "string") return fail("state_dict_metadata has a key that is not a string")
    if (isPyObject(md, "torch.distributed.checkpoint.metadata.BytesStorageMetadata")) {
      out.set(key, { _tag: "Bytes", key, location: locations.get(key) })
      continue
    }
    if (!isPyObject(md, "torch.distributed.checkpoint.metadata.TensorStorageMetadata")) {
      return fail(`${key}: metadata of class ${md instanceof PyObject ? md.className : typeof md} is not read`)
    }
    const size = intArray(md.fields.size, `${key} size`)
    const chunksRaw = md.fields.chunks
    if (!Array.isArray(chunksRaw)) return fail(`${key}: no chunk list`)
    const chunks = chunksRaw.map((c: unknown, i): TensorChunk => {
      const offsets = intArray(field(c, "offsets"), `${key} chunk ${i} offsets`)
      const sizes = intArray(field(c, "sizes"), `${key} chunk ${i} sizes`)
      if (offsets.length !== size.length || sizes.length !== size.length) {
        fail(`${key}: chunk ${i} has ${offsets.length} dimensions, the tensor ${size.length}`)
      }
      offsets.forEach((o, d) => {
        if (o + sizes[d]! > size[d]!) fail(`${key}: chunk ${i} reaches past the tensor's size along dimension ${d}`)
      })
      const location = locations.get(indexKey(key, offsets))
      if (location === undefined) return fail(`${key}: chunk at [${offsets.join(", ")}] has no storage entry`)
      return { offsets, sizes, location }
    })
    out.set(key, { _tag: "Tensor", key, dtype: dtypeOf(md.fields.properties, key), size, chunks })
  }
  return out
}
