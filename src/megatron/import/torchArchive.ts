/**
 * torch.save's zip archives: `<name>/data.pkl` (the pickled object, tensors as persistent ids),
 * `<name>/data/<key>` (one entry per storage, stored uncompressed and aligned) and
 * `<name>/byteorder`. A distributed checkpoint's .distcp files are concatenations of such archives,
 * one per tensor chunk, found through the storage index; a legacy checkpoint's .pt file is one.
 *
 * The zip structure is read with `yauzl` over a byte range of a file; tensor bytes are then read
 * straight from the file at their entry's data offset, so only the tensor asked for is in memory.
 */
import * as fs from "node:fs"
import type { Readable } from "node:stream"
import yauzl from "yauzl"
import type { StorageRef, TensorRef } from "./torchPickle.ts"
import { dtypeBytes, PickleError, unpickle } from "./torchPickle.ts"

export class ArchiveError extends Error {}

/** yauzl's random-access reader over [base, base + size) of an open file. */
class RangeReader extends (yauzl.RandomAccessReader as unknown as new() => yauzl.RandomAccessReader) {
  constructor(private readonly fd: number, private readonly base: number) {
    super()
  }
  override _readStreamForRange(start: number, end: number): Readable {
    return fs.createReadStream("", {
      fd: this.fd,
      start: this.base + start,
      end: this.base + end - 1,
      autoClose: false
    })
  }
  override read(buffer: Buffer, offset: number, length: number, position: number, callback: (e: Error | null) => void) {
    try {
      readFully(this.fd, buffer, offset, length, this.base + position)
      callback(null)
    } catch (e) {
      callback(e as Error)
    }
  }
  override close(callback: (e: Error | null) => void) {
    callback(null)
  }
}

const readFully = (fd: number, buffer: Uint8Array, offset: number, length: number, position: number): void => {
  let done = 0
  while (done < length) {
    const n = fs.readSync(fd, buffer, offset + done, length - done, position + done)
    if (n === 0) throw new ArchiveError(`file ends ${length - done} bytes early`)
    done += n
  }
}

interface EntryData {
  /** Absolute offset in the file of the entry's (uncompressed) bytes. */
  readonly start: number
  readonly size: number
}

export interface TorchArchive {
  /** The unpickled object (dicts as Maps, tensors as TensorRefs). */
  readonly value: unknown
  readonly storages: ReadonlyMap<string, StorageRef>
  /**
   * The bytes of a tensor (a contiguous view of one storage), little-endian, in row-major order; or of
   * `count` elements from element `first` of it. Into `into` when given (it must be large enough).
   */
  readonly readTensor: (tensor: TensorRef, into?: Uint8Array, first?: number, count?: number) => Uint8Array
}

const entries = (zip: yauzl.ZipFile): Promise<Array<yauzl.Entry>> =>
  new Promise((resolve, reject) => {
    const all: Array<yauzl.Entry> = []
    zip.on("entry", (e: yauzl.Entry) => {
      all.push(e)
      zip.readEntry()
    })
    zip.on("end", () => resolve(all))
    zip.on("error", reject)
    zip.readEntry()
  })

const dataStart = (zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<number> =>
  new Promise((resolve, reject) =>
    zip.readLocalFileHeader(entry, { minimal: true }, (e, h) => (e ? reject(e) : resolve(h.fileDataStart)))
  )

/** Elements of a row-major tensor of this size have these strides. */
export const rowMajorStrides = (size: ReadonlyArray<number>): Array<number> => {
  const out = new Array<number>(size.length)
  let s = 1
  for (let i = size.length - 1; i >= 0; i--) {
    out[i] = s
    s *= size[i]!
  }
  return out
}

export const numelOf = (size: ReadonlyArray<number>): number => size.reduce((a, b) => a * b, 1)

/**
 * Opens the torch.save archive in `[start, start + length)` of the open file `fd`.
 * Errors are ArchiveError / PickleError with a message that says what is wrong (the caller adds
 * which checkpoint, file and tensor).
 */
export const openTorchArchive = async (fd: number, start: number, length: number): Promise<TorchArchive> => {
  const zip = await new Promise<yauzl.ZipFile>((resolve, reject) =>
    yauzl.fromRandomAccessReader(
      new RangeReader(fd, start),
      length,
      { lazyEntries: true, autoClose: false, validateEntrySizes: true },
      (e, z) => (e ? reject(new ArchiveError(`not a torch.save archive (${e.message})`)) : resolve(z))
    )
  )
  const list = await entries(zip).catch((e: Error) => {
    throw new ArchiveError(`not a torch.save archive (${e.message})`)
  })
  const pkl = list.find((e) => /^[^/]+\/data\.pkl$/.test(e.fileName))
  if (pkl === undefined) throw new ArchiveError("not a torch.save archive (no data.pkl)")
  const prefix = pkl.fileName.slice(0, -"data.pkl".length)
  const located = new Map<string, EntryData>()
  for (const e of list) {
    if (!e.fileName.startsWith(prefix)) continue
    if (e.compressionMethod !== 0) {
      throw new ArchiveError(`zip entry ${e.fileName} is compressed; torch.save stores entries uncompressed`)
    }
    const at = await dataStart(zip, e).catch((err: Error) => {
      throw new ArchiveError(`zip entry ${e.fileName}: ${err.message}`)
    })
    if (at + e.uncompressedSize > length) {
      throw new ArchiveError(`zip entry ${e.fileName} runs past the end of the archive`)
    }
    located.set(e.fileName.slice(prefix.length), { start: start + at, size: e.uncompressedSize })
  }
  const read = (name: string): Uint8Array => {
    const d = located.get(name)!
    const buf = new Uint8Array(d.size)
    readFully(fd, buf, 0, d.size, d.start)
    return buf
  }
  if (located.has("byteorder")) {
    const order = Buffer.from(read("byteorder")).toString("latin1")
    if (order !== "little") throw new ArchiveError(`byteorder is ${order}; only little-endian archives are read`)
  }
  const storages = new Map<string, StorageRef>()
  const value = unpickle(read("data.pkl"), storages)
  for (const ref of storages.values()) {
    const d = located.get(`data/${ref.key}`)
    if (d === undefined) throw new ArchiveError(`storage ${ref.key} has no zip entry data/${ref.key}`)
    if (d.size < ref.numel * dtypeBytes[ref.dtype]) {
      throw new ArchiveError(`storage ${ref.key} holds ${d.size} bytes, fewer than its ${ref.numel} elements need`)
    }
  }
  zip.close()
  return {
    value,
    storages,
    readTensor: (t, into, first = 0, count) => {
      const item = dtypeBytes[t.storage.dtype]
      const numel = numelOf(t.size)
      const strides = rowMajorStrides(t.size)
      if (numel > 1 && t.stride.some((s, i) => t.size[i]! > 1 && s !== strides[i])) {
        throw new ArchiveError(
          `tensor of size [${t.size.join(", ")}] is not contiguous (stride [${t.stride.join(", ")}])`
        )
      }
      if (t.offset + numel > t.storage.numel) {
        throw new ArchiveError(
          `tensor of ${numel} elements at offset ${t.offset} overruns its storage of ${t.storage.numel}`
        )
      }
      const n = count ?? numel - first
      if (first < 0 || first + n > numel) {
        throw new ArchiveError(`internal: elements [${first}, ${first + n}) of ${numel}`)
      }
      const d = located.get(`data/${t.storage.key}`)!
      const bytes = n * item
      const out = into ?? new Uint8Array(bytes)
      if (out.byteLength < bytes) throw new ArchiveError("internal: tensor buffer too small")
      readFully(fd, out, 0, bytes, d.start + (t.offset + first) * item)
      return out.byteLength === bytes ? out : out.subarray(0, bytes)
    }
  }
}

export { PickleError }
