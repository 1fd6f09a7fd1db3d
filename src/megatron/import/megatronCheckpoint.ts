/**
 * Opens one Megatron-LM checkpoint directory (`iter_XXXXXXX/`) in either of its formats and presents
 * it as global tensors (tensorSource.ts) plus the stored training arguments:
 *
 * - torch_dist (Megatron-core's default): `.metadata` indexes every chunk of every tensor in the
 *   `__<rank>_<n>.distcp` files; each chunk is a torch.save archive at an offset in one of them;
 *   `common.pt` holds what is not sharded (args, iteration).
 * - legacy (`--ckpt-format torch`): `mp_rank_00/model_optim_rng.pt`, or with expert parallelism one
 *   `mp_rank_00_<ep>/` per expert-parallel rank, each holding the replicated weights and that rank's
 *   experts under local indices. They are placed at their global expert index here, so both formats
 *   present the same keys (Megatron-core's sharded keys) to the mapping.
 *
 * docs/megatron-checkpoints.md has the names, shapes and the sources they were read from.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import type { TensorEntry } from "./distcpMetadata.ts"
import { parseDistcpMetadata } from "./distcpMetadata.ts"
import type { MegatronArgs } from "./megatronArgs.ts"
import { readMegatronArgs } from "./megatronArgs.ts"
import type { SourceChunk, SourceTensor } from "./tensorSource.ts"
import type { TorchArchive } from "./torchArchive.ts"
import { numelOf, openTorchArchive } from "./torchArchive.ts"
import { dtypeBytes, field, isTensorRef, type TensorRef } from "./torchPickle.ts"

export class CheckpointError extends Error {
  constructor(readonly file: string | undefined, readonly tensor: string | undefined, readonly reason: string) {
    super(reason)
  }
}

export interface OpenCheckpoint {
  readonly format: "torch_dist" | "legacy"
  readonly dir: string
  readonly args: MegatronArgs
  /** Model weights by Megatron-core's sharded key (optimizer state, RNG and extra states left out). */
  readonly tensors: ReadonlyMap<string, SourceTensor>
  /** Keys present but not model weights, by why they are skipped. */
  readonly skipped: ReadonlyArray<string>
  readonly close: () => void
}

/** Entries that are not model weights: optimizer moments and steps, RNG states, TE's fp8 metadata. */
export const isModelKey = (key: string): boolean =>
  !/^(optimizer|rng_state|rerun_state_machine|opt_param_scheduler)\b/.test(key) && !/\._extra_state/.test(key) &&
  !/(^|\.)_extra_state/.test(key)

/** Opens files once and closes them together. */
class Files {
  private readonly fds = new Map<string, { fd: number; size: number }>()
  open(file: string): { fd: number; size: number } {
    let f = this.fds.get(file)
    if (f === undefined) {
      let fd: number
      try {
        fd = fs.openSync(file, "r")
      } catch (e) {
        throw new CheckpointError(
          file,
          undefined,
          (e as NodeJS.ErrnoException).code === "ENOENT" ? "is missing" : String(e)
        )
      }
      f = { fd, size: fs.fstatSync(fd).size }
      this.fds.set(file, f)
    }
    return f
  }
  close() {
    for (const { fd } of this.fds.values()) fs.closeSync(fd)
    this.fds.clear()
  }
}

const wrap = async <A>(file: string, tensor: string | undefined, f: () => Promise<A> | A): Promise<A> => {
  try {
    return await f()
  } catch (e) {
    if (e instanceof CheckpointError) {
      throw e.tensor === undefined && tensor !== undefined ? new CheckpointError(e.file, tensor, e.reason) : e
    }
    throw new CheckpointError(file, tensor, e instanceof Error ? e.message : String(e))
  }
}

const openArchiveFile = (files: Files, file: string, tensor?: string): Promise<TorchArchive> =>
  wrap(file, tensor, () => {
    const { fd, size } = files.open(file)
    return openTorchArchive(fd, 0, size)
  })

const openTorchDist = async (dir: string, files: Files): Promise<OpenCheckpoint> => {
  const metaFile = path.join(dir, "metadata.json")
  if (fs.existsSync(metaFile)) {
    const backend = await wrap(metaFile, undefined, () => JSON.parse(fs.readFileSync(metaFile, "utf8")).sharded_backend)
    if (backend !== undefined && backend !== "torch_dist") {
      throw new CheckpointError(metaFile, undefined, `sharded_backend is ${backend}; only torch_dist is read`)
    }
  }
  const indexFile = path.join(dir, ".metadata")
  const entries = await wrap(indexFile, undefined, () => parseDistcpMetadata(fs.readFileSync(indexFile)))
  const commonFile = path.join(dir, "common.pt")
  const common = await openArchiveFile(files, commonFile)
  const args = await wrap(
    commonFile,
    undefined,
    () => readMegatronArgs(field(common.value, "args"), { iteration: field(common.value, "iteration") })
  )
  const tensors = new Map<string, SourceTensor>()
  const skipped: Array<string> = []
  for (const entry of entries.values()) {
    if (entry._tag === "Bytes" || !isModelKey(entry.key)) {
      skipped.push(entry.key)
      continue
    }
    tensors.set(entry.key, distTensor(dir, files, entry))
  }
  return { format: "torch_dist", dir, args, tensors, skipped, close: () => files.close() }
}

/** A torch_dist tensor: each chunk is a torch.save archive of exactly that chunk, somewhere in a .distcp file. */
const distTensor = (dir: string, files: Files, entry: TensorEntry): SourceTensor => ({
  key: entry.key,
  dtype: entry.dtype,
  size: entry.size,
  chunks: entry.chunks.map((c): SourceChunk => {
    const file = path.join(dir, c.location.file)
    return {
      offsets: c.offsets,
      sizes: c.sizes,
      file,
      read: (scratch, first, rows) =>
        wrap(file, entry.key, async () => {
          const { fd, size } = files.open(file)
          if (c.location.offset + c.location.length > size) {
            throw new CheckpointError(
              file,
              entry.key,
              `its storage entry (offset ${c.location.offset}, length ${c.location.length}) runs past the file's end (${size} bytes)`
            )
          }
          const archive = await openTorchArchive(fd, c.location.offset, c.location.length)
          if (!isTensorRef(archive.value)) throw new CheckpointError(file, entry.key, "its chunk is not a tensor")
          const t = archive.value
          if (t.storage.dtype !== entry.dtype) {
            throw new CheckpointError(
              file,
              entry.key,
              `its chunk is ${t.storage.dtype}, the metadata says ${entry.dtype}`
            )
          }
          if (numelOf(t.size) !== numelOf(c.sizes)) {
            throw new CheckpointError(
              file,
              entry.key,
              `its chunk has shape [${t.size.join(", ")}], the metadata says [${c.sizes.join(", ")}]`
            )
          }
          const rowElems = numelOf(c.sizes) / c.sizes[0]!
          return archive.readTensor(t, scratch, first * rowElems, rows * rowElems)
        })
    }
  })
})

// ---- legacy --------------------------------------------------------------------------------------

const LOCAL_EXPERT = /^(decoder\.layers\.\d+\.mlp\.experts)\.local_experts\.(\d+)\.(.+)$/
const TE_GROUPED = /^(decoder\.layers\.\d+\.mlp\.experts)\.(linear_fc[12])\.weight(\d+)$/
const LEGACY_GROUPED = /^(decoder\.layers\.\d+\.mlp\.experts)\.weight([12])$/

/** A whole tensor of one rank's file, as a chunk at `offsets` of a global tensor. */
const wholeChunk = (
  file: string,
  archive: TorchArchive,
  t: TensorRef,
  key: string,
  offsets: ReadonlyArray<number>,
  sizes: ReadonlyArray<number>,
  transform?: (raw: Uint8Array) => Uint8Array
): SourceChunk => ({
  offsets,
  sizes,
  file,
  read: (scratch, first, rows) =>
    wrap(file, key, () => {
      const rowElems = numelOf(sizes) / sizes[0]!
      if (transform === undefined) return archive.readTensor(t, scratch, first * rowElems, rows * rowElems)
      // A transposed GroupedMLP weight is rebuilt whole, then the rows are cut from it.
      const item = dtypeBytes[t.storage.dtype]
      return transform(archive.readTensor(t)).subarray(first * rowElems * item, (first + rows) * rowElems * item)
    })
})

/** Swaps the last two axes of [n, a, b] elements of `item` bytes each: GroupedMLP stores weights transposed. */
const transposeLast = (raw: Uint8Array, n: number, a: number, b: number, item: number): Uint8Array => {
  const out = new Uint8Array(raw.byteLength)
  for (let e = 0; e < n; e++) {
    for (let i = 0; i < a; i++) {
      for (let j = 0; j < b; j++) {
        const src = ((e * a + i) * b + j) * item
        const dst = ((e * b + j) * a + i) * item
        for (let k = 0; k < item; k++) out[dst + k] = raw[src + k]!
      }
    }
  }
  return out
}

const openLegacy = async (dir: string, files: Files): Promise<OpenCheckpoint> => {
  const rankDirs = fs.readdirSync(dir).filter((d) => /^mp_rank_\d{2}(_\d{3})?(_\d{3})?$/.test(d)).sort()
  if (rankDirs.length === 0) throw new CheckpointError(dir, undefined, "has no mp_rank_* directory")
  if (rankDirs.some((d) => !d.startsWith("mp_rank_00"))) {
    throw new CheckpointError(
      dir,
      undefined,
      "is tensor-parallel (mp_rank_01...); legacy checkpoints are read at tensor parallel 1 only"
    )
  }
  const ranks: Array<{ file: string; archive: TorchArchive; model: Map<string, unknown> }> = []
  for (const d of rankDirs) {
    const file = path.join(dir, d, "model_optim_rng.pt")
    const archive = await openArchiveFile(files, file)
    const model = field(archive.value, "model")
    if (!(model instanceof Map)) throw new CheckpointError(file, undefined, "holds no 'model' state dict")
    ranks.push({ file, archive, model })
  }
  const first = ranks[0]!
  const args = await wrap(
    first.file,
    undefined,
    () => readMegatronArgs(field(first.archive.value, "args"), { iteration: field(first.archive.value, "iteration") })
  )
  if (args.layout.pipelineParallel !== 1) {
    throw new CheckpointError(
      first.file,
      undefined,
      "is pipeline-parallel; legacy checkpoints are read at pipeline parallel 1 only"
    )
  }
  if (ranks.length !== args.layout.expertParallel) {
    throw new CheckpointError(
      dir,
      undefined,
      `has ${ranks.length} expert-parallel rank directories, args.expert_model_parallel_size is ${args.layout.expertParallel}`
    )
  }
  const E = args.model.numExperts
  const local = E / ranks.length
  const h = args.model.hiddenSize
  const F = args.model.moeFfnHiddenSize
  type Building = { dtype: SourceTensor["dtype"]; size: ReadonlyArray<number>; chunks: Array<SourceChunk> }
  const building = new Map<string, Building>()
  const skipped: Array<string> = []
  const add = (key: string, dtype: Building["dtype"], size: ReadonlyArray<number>, chunk: SourceChunk) => {
    const b = building.get(key) ?? { dtype, size, chunks: [] }
    b.chunks.push(chunk)
    building.set(key, b)
  }
  ranks.forEach(({ archive, file, model }, rank) => {
    for (const [key, value] of model) {
      if (typeof key !== "string") continue
      if (!isModelKey(key) || !isTensorRef(value)) {
        if (rank === 0) skipped.push(key)
        continue
      }
      const t = value
      const dtype = t.storage.dtype
      const seq = LOCAL_EXPERT.exec(key)
      const te = TE_GROUPED.exec(key)
      const grouped = LEGACY_GROUPED.exec(key)
      if (seq) {
        const g = rank * local + Number(seq[2])
        add(
          `${seq[1]}.experts.${seq[3]}`,
          dtype,
          [E, ...t.size],
          wholeChunk(file, archive, t, key, [g, ...t.size.map(() => 0)], [1, ...t.size])
        )
      } else if (te) {
        const g = rank * local + Number(te[3])
        add(
          `${te[1]}.experts.${te[2]}.weight`,
          dtype,
          [E, ...t.size],
          wholeChunk(file, archive, t, key, [g, ...t.size.map(() => 0)], [1, ...t.size])
        )
      } else if (grouped) {
        // GroupedMLP keeps weight1 as [h, local * 2F] (fc1, transposed) and weight2 as [local * F, h].
        const fc1 = grouped[2] === "1"
        const out = fc1 ? 2 * F : h
        const inner = fc1 ? h : F
        const item = dtypeBytes[t.storage.dtype]
        add(
          `${grouped[1]}.experts.linear_fc${grouped[2]}.weight`,
          dtype,
          [E, out, inner],
          wholeChunk(
            file,
            archive,
            t,
            key,
            [rank * local, 0, 0],
            [local, out, inner],
            (raw) => fc1 ? transposeLast(raw, local, h, 2 * F, item) : transposeLast(raw, local, F, h, item)
          )
        )
      } else if (rank === 0) {
        // Replicated weights: every expert-parallel rank holds a copy; the first one's is read.
        add(key, dtype, t.size, wholeChunk(file, archive, t, key, t.size.map(() => 0), t.size))
      }
    }
  })
  const tensors = new Map<string, SourceTensor>()
  for (const [key, b] of building) tensors.set(key, { key, ...b })
  return { format: "legacy", dir, args, tensors, skipped, close: () => files.close() }
}

/** Opens `dir` (an iter_XXXXXXX directory) in whichever format it is. */
export const openMegatronCheckpoint = async (dir: string): Promise<OpenCheckpoint> => {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new CheckpointError(dir, undefined, "is not a directory")
  }
  const files = new Files()
  try {
    if (fs.existsSync(path.join(dir, ".metadata"))) return await openTorchDist(dir, files)
    return await openLegacy(dir, files)
  } catch (e) {
    files.close()
    throw e
  }
}
