/**
 * Megatron-LM checkpoint -> the worker's checkpoint (model.safetensors + state.json; bf16 weights stay
 * bf16, which the worker widens exactly, anything else becomes float32), so
 * that `eval` and `trace` run on released FLAME-MoE models and on what the Megatron backend trains.
 *
 * Streams tensor by tensor: the safetensors header is known from the model's shape before any weight
 * is read, then each worker tensor is assembled from its chunks, written and dropped; memory holds
 * one tensor and one chunk. Every model weight in the checkpoint must be used: a tensor the mapping
 * does not know (a bias, a q/k norm) means a model the worker would compute differently.
 */
import { Either } from "effect"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { parseMoeLayerFreq } from "../../flame/moeLayerFreq.ts"
import type { ImportedModel } from "./megatronArgs.ts"
import { ArgsError } from "./megatronArgs.ts"
import type { OpenCheckpoint } from "./megatronCheckpoint.ts"
import { CheckpointError, openMegatronCheckpoint } from "./megatronCheckpoint.ts"
import type { WorkerDtype } from "./tensorSource.ts"
import { ArchiveError, numelOf } from "./torchArchive.ts"
import { dtypeBytes, PickleError } from "./torchPickle.ts"
import type { WorkerTensor } from "./workerLayout.ts"
import { MappingError, resolve, workerTensors } from "./workerLayout.ts"

/** Why an import failed, with the place: checkpoint directory, file and tensor where known. */
export class ImportError extends Error {
  constructor(
    readonly checkpoint: string,
    readonly file: string | undefined,
    readonly tensor: string | undefined,
    readonly reason: string
  ) {
    super(
      `Megatron checkpoint ${checkpoint}` +
        (file !== undefined && file !== checkpoint ? `, file ${path.relative(checkpoint, file) || file}` : "") +
        (tensor !== undefined ? `, tensor ${tensor}` : "") + `: ${reason}`
    )
  }
}

export interface ImportOptions {
  /** Where model.safetensors and state.json go. */
  readonly outputDir: string
  /** The worker's model fingerprint of the checkpoint's model (flame-worker params; see readCheckpointModel). */
  readonly fingerprint: string
  /** When given, the checkpoint's model must be this one (a stage's declared model). */
  readonly expected?: Partial<ImportedModel> | undefined
}

export interface ImportResult {
  readonly format: "torch_dist" | "legacy"
  readonly iteration: number
  readonly model: ImportedModel
  readonly tensors: number
  readonly parameters: number
  readonly bytesWritten: number
  readonly skippedEntries: number
  readonly modelFingerprint: string
}

const SAFETENSORS = "model.safetensors"

/** Slices written at once: large enough for few system calls, small enough to bound memory. */
const SLICE_BYTES = 32 * 1024 * 1024

const safetensorsHeader = (
  tensors: ReadonlyArray<{ readonly tensor: WorkerTensor; readonly dtype: WorkerDtype }>,
  fingerprint: string
): Buffer => {
  const header: Record<string, unknown> = {}
  let offset = 0
  for (const { dtype, tensor } of tensors) {
    const bytes = numelOf(tensor.shape) * dtypeBytes[dtype]
    header[tensor.name] = { dtype, shape: tensor.shape, data_offsets: [offset, offset + bytes] }
    offset += bytes
  }
  header.__metadata__ = { format: "pt", "flame.modelFingerprint": fingerprint }
  let json = JSON.stringify(header)
  while (json.length % 8 !== 0) json += " "
  const len = Buffer.alloc(8)
  len.writeBigUInt64LE(BigInt(json.length))
  return Buffer.concat([len, Buffer.from(json, "utf8")])
}

/** What decides the model's function: a stage's declared model must agree on these. */
const shapeKeys = [
  "vocabSize",
  "hiddenSize",
  "numLayers",
  "numAttentionHeads",
  "ffnHiddenSize",
  "moeFfnHiddenSize",
  "numExperts",
  "topK",
  "sharedExpertSize",
  "seqLength",
  "ropeBase",
  "normEps"
] as const

const checkExpected = (
  model: ImportedModel,
  pattern: ReadonlyArray<boolean>,
  expected: Partial<ImportedModel> | undefined
): void => {
  if (expected === undefined) return
  if (expected.moeLayers !== undefined) {
    const want = parseMoeLayerFreq(expected.moeLayers, model.numLayers)
    if (Either.isLeft(want) || want.right.join() !== pattern.join()) {
      throw new ArgsError(
        `the stored args give moe_layer_freq ${model.moeLayers}, the stage expects ${expected.moeLayers}`
      )
    }
  }
  for (const key of shapeKeys) {
    const actual = model[key]
    const value = expected[key]
    if (value !== undefined && actual !== value) {
      throw new ArgsError(
        `the stored args give ${key} = ${JSON.stringify(actual)}, the stage expects ${JSON.stringify(value)}`
      )
    }
  }
}

const convert = async (ckpt: OpenCheckpoint, options: ImportOptions): Promise<ImportResult> => {
  const { model } = ckpt.args
  checkExpected(model, ckpt.args.moePattern, options.expected)
  const layout = workerTensors(model, ckpt.args.moePattern)
  const used = new Set<string>()
  const plan = layout.map((t) => ({ tensor: t, source: resolve(t, ckpt.tensors, model, used) }))
  const unknown = [...ckpt.tensors.keys()].filter((k) => !used.has(k))
  if (unknown.length > 0) {
    throw new MappingError(
      unknown[0]!,
      undefined,
      `is not part of FLAME-MoE's architecture (${unknown.length} such tensor(s)` +
        (unknown.length > 1 ? `, also ${unknown.slice(1, 4).join(", ")}` : "") +
        "); the worker cannot compute this model"
    )
  }
  const fingerprint = options.fingerprint
  fs.mkdirSync(options.outputDir, { recursive: true })
  const final = path.join(options.outputDir, SAFETENSORS)
  const tmp = path.join(options.outputDir, `.${SAFETENSORS}.tmp-${process.pid}`)
  const hash = createHash("sha256")
  const file = await fs.promises.open(tmp, "w")
  let bytesWritten = 0
  let parameters = 0
  let writing: Promise<void> = Promise.resolve()
  const write = async (bytes: Uint8Array) => {
    let done = 0
    while (done < bytes.byteLength) done += (await file.write(bytes, done, bytes.byteLength - done)).bytesWritten
  }
  try {
    const header = safetensorsHeader(plan.map((p) => ({ tensor: p.tensor, dtype: p.source.dtype })), fingerprint)
    hash.update(header)
    writing = write(header)
    bytesWritten += header.byteLength
    // Tensors go out in slices of up to SLICE_BYTES (rows of their first dimension) through two
    // buffers in turn: one is written (the libuv thread pool) while the next slice is assembled.
    const slices = plan.map(({ source, tensor }) => {
      const rowBytes = numelOf(tensor.shape.slice(1)) * dtypeBytes[source.dtype]
      const rows = source.permutes ? tensor.shape[0]! : Math.max(1, Math.floor(SLICE_BYTES / rowBytes))
      return { rows, bytes: rows * rowBytes }
    })
    const capacity = Math.max(...slices.map((s) => s.bytes))
    const buffers = [new Uint8Array(capacity), new Uint8Array(capacity)]
    let turn = 0
    for (const [i, { source, tensor }] of plan.entries()) {
      const numel = numelOf(tensor.shape)
      const rows = tensor.shape[0]!
      for (let first = 0; first < rows; first += slices[i]!.rows) {
        const count = Math.min(slices[i]!.rows, rows - first)
        const region = await source.read(buffers[turn], { first, count })
        const expected = (numel / rows) * count * dtypeBytes[source.dtype]
        if (region.dtype !== source.dtype || region.bytes.byteLength !== expected) {
          throw new MappingError(
            source.key,
            undefined,
            `gave ${region.bytes.byteLength} bytes for ${tensor.name}, ${expected} needed`
          )
        }
        hash.update(region.bytes)
        await writing
        writing = write(region.bytes)
        bytesWritten += region.bytes.byteLength
        turn = 1 - turn
      }
      parameters += numel
    }
    await writing
    await file.sync()
  } finally {
    await writing.catch(() => undefined)
    await file.close()
  }
  fs.renameSync(tmp, final)
  const iteration = ckpt.args.iteration ?? Number(/iter_(\d+)/.exec(path.basename(ckpt.dir))?.[1] ?? 0)
  const gbs = ckpt.args.globalBatchSize
  const state = {
    format: "flame-worker-checkpoint",
    version: 1,
    iteration,
    consumedSamples: ckpt.args.consumedSamples ?? (gbs === undefined ? 0 : iteration * gbs),
    modelFingerprint: fingerprint,
    model,
    files: { [SAFETENSORS]: hash.digest("hex") },
    // No paths: an audit re-imports from another directory and must get the same bytes.
    importedFrom: { format: ckpt.format, layout: ckpt.args.layout }
  }
  const stateTmp = path.join(options.outputDir, `.state.json.tmp-${process.pid}`)
  fs.writeFileSync(stateTmp, JSON.stringify(state, null, 2) + "\n")
  fs.renameSync(stateTmp, path.join(options.outputDir, "state.json"))
  return {
    format: ckpt.format,
    iteration,
    model,
    tensors: layout.length,
    parameters,
    bytesWritten,
    skippedEntries: ckpt.skipped.length,
    modelFingerprint: fingerprint
  }
}

/** Any failure of reading or converting `dir` as an ImportError naming the place. */
const asImportError = (dir: string, e: unknown): unknown => {
  const fail = (file: string | undefined, tensor: string | undefined, reason: string) =>
    new ImportError(dir, file, tensor, reason)
  if (e instanceof ImportError) return e
  if (e instanceof CheckpointError) return fail(e.file, e.tensor, e.reason)
  if (e instanceof MappingError) return fail(e.file, e.tensor, e.message)
  if (e instanceof ArgsError) return fail(undefined, undefined, e.message)
  if (e instanceof PickleError || e instanceof ArchiveError) return fail(undefined, undefined, e.message)
  return e
}

/** An opened checkpoint: its model is known (and checked) before anything is converted. */
export interface PendingImport {
  /** The model the checkpoint holds (from its stored args), checked to be FLAME-MoE's architecture. */
  readonly model: ImportedModel
  readonly convert: (options: ImportOptions) => Promise<ImportResult>
  readonly close: () => void
}

/**
 * Opens one iter_XXXXXXX directory once: a caller can learn the model (to ask the worker for its
 * fingerprint) and then convert without reading the index and args again. Failures are ImportErrors.
 */
export const openImport = async (dir: string): Promise<PendingImport> => {
  const ckpt = await openMegatronCheckpoint(dir).catch((e) => Promise.reject(asImportError(dir, e)))
  return {
    model: ckpt.args.model,
    convert: (options) => convert(ckpt, options).catch((e) => Promise.reject(asImportError(dir, e))),
    close: () => ckpt.close()
  }
}

const withImport = async <A>(dir: string, f: (pending: PendingImport) => Promise<A>): Promise<A> => {
  const pending = await openImport(dir)
  try {
    return await f(pending)
  } finally {
    pending.close()
  }
}

/** The model a checkpoint holds (from its stored args), checked to be FLAME-MoE's architecture. */
export const readCheckpointModel = (dir: string): Promise<ImportedModel> =>
  withImport(dir, (pending) => Promise.resolve(pending.model))

/** Imports one iter_XXXXXXX directory; every failure is an ImportError naming the place. */
export const importMegatronCheckpoint = (dir: string, options: ImportOptions): Promise<ImportResult> =>
  withImport(dir, (pending) => pending.convert(options))
