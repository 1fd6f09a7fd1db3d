/**
 * Uncompressed bytes of an input shard as a stream of chunks: plain jsonl, or zstd (chosen by the
 * .zst/.zstd suffix or the zstd magic number). Zstd goes through Node's own zlib when it has it
 * (Node >= 22.15), else the `zstd` program when installed (native speed, verifies checksums),
 * else the pure-JavaScript fzstd decoder.
 */
import { Decompress } from "fzstd"
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as zlib from "node:zlib"

export type ZstdDecoder = "auto" | "node" | "cli" | "js"

/** The zstd stream ended early or could not be decoded. */
export class ZstdStreamError extends Error {
  constructor(readonly kind: "truncated" | "corrupt", detail: string) {
    super(detail)
  }
}

const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd]
const CHUNK = 1 << 22

const hasNodeZstd = (): boolean =>
  typeof (zlib as { createZstdDecompress?: unknown }).createZstdDecompress === "function"

let cliAvailable: boolean | undefined
const hasZstdCli = (): boolean => {
  if (cliAvailable === undefined) {
    const r = spawnSync("zstd", ["--version"], { stdio: "ignore" })
    cliAvailable = r.status === 0
  }
  return cliAvailable
}

const startsWithZstdMagic = (file: string): boolean => {
  const fd = fs.openSync(file, "r")
  try {
    const head = Buffer.alloc(4)
    const n = fs.readSync(fd, head, 0, 4, 0)
    return n === 4 && ZSTD_MAGIC.every((b, i) => head[i] === b)
  } finally {
    fs.closeSync(fd)
  }
}

export const isZstdFile = (file: string): boolean =>
  file.endsWith(".zst") || file.endsWith(".zstd") || startsWithZstdMagic(file)

async function* plainChunks(file: string): AsyncGenerator<Uint8Array> {
  const handle = await fs.promises.open(file, "r")
  try {
    for (;;) {
      const buf = Buffer.allocUnsafe(CHUNK)
      const { bytesRead } = await handle.read(buf, 0, CHUNK)
      if (bytesRead === 0) return
      yield buf.subarray(0, bytesRead)
    }
  } finally {
    await handle.close()
  }
}

async function* jsChunks(file: string): AsyncGenerator<Uint8Array> {
  const out: Array<Uint8Array> = []
  const z = new Decompress((data) => {
    out.push(data)
  })
  const handle = await fs.promises.open(file, "r")
  try {
    const size = (await handle.stat()).size
    let read = 0
    for (;;) {
      const buf = Buffer.allocUnsafe(CHUNK)
      const { bytesRead } = await handle.read(buf, 0, CHUNK)
      read += bytesRead
      try {
        z.push(buf.subarray(0, bytesRead), bytesRead === 0 || read >= size)
      } catch (e) {
        // fzstd reports code 5 (UnexpectedEOF) when the input ends inside a frame.
        const code = (e as { code?: number }).code
        yield* out.splice(0)
        throw new ZstdStreamError(code === 5 ? "truncated" : "corrupt", (e as Error).message)
      }
      yield* out.splice(0)
      if (bytesRead === 0 || read >= size) return
    }
  } finally {
    await handle.close()
  }
}

const classify = (message: string): ZstdStreamError =>
  new ZstdStreamError(
    /premature|truncat|unexpected end|incomplete|EOF/i.test(message) ? "truncated" : "corrupt",
    message.trim()
  )

/**
 * Pipes and stream decoders deliver 64 KiB pieces; the line reader's cost per chunk (a copy of
 * the partial last line, one call into the encoder) is better paid per few MB.
 */
async function* coalesced(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  let parts: Array<Uint8Array> = []
  let size = 0
  const take = (): Uint8Array => {
    const block = parts.length === 1 ? parts[0] as Uint8Array : Buffer.concat(parts, size)
    parts = []
    size = 0
    return block
  }
  try {
    for await (const part of source) {
      parts.push(part)
      size += part.length
      if (size >= CHUNK) yield take()
    }
  } catch (e) {
    // What was decoded before a failure still counts (the lines before a truncation are kept).
    if (size > 0) yield take()
    throw e
  }
  if (size > 0) yield take()
}

async function* cliChunks(file: string): AsyncGenerator<Uint8Array> {
  const child = spawn("zstd", ["-dc", "-q", "--", file], { stdio: ["ignore", "pipe", "pipe"] })
  let stderr = ""
  child.stderr.on("data", (d: Buffer) => stderr += d.toString())
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)))
  try {
    yield* coalesced(child.stdout as AsyncIterable<Buffer>)
    const code = await exited
    if (code !== 0) throw classify(stderr || `zstd exited with ${code}`)
  } finally {
    // Stopped early (a bad line in fail mode): do not leave the decompressor running.
    if (child.exitCode === null) child.kill()
  }
}

async function* nodeChunks(file: string): AsyncGenerator<Uint8Array> {
  const create = (zlib as unknown as { createZstdDecompress: () => NodeJS.ReadWriteStream & { destroy(): void } })
    .createZstdDecompress
  const z = create()
  const input = fs.createReadStream(file, { highWaterMark: CHUNK })
  input.on("error", (e) => z.emit("error", e))
  input.pipe(z)
  try {
    yield* coalesced(z as AsyncIterable<Buffer>)
  } catch (e) {
    throw classify((e as Error).message)
  } finally {
    input.destroy()
    z.destroy()
  }
}

/** Chunks of the uncompressed jsonl of `file`; ZstdStreamError when a zstd stream is bad. */
export const jsonlChunks = (file: string, decoder: ZstdDecoder = "auto"): AsyncGenerator<Uint8Array> => {
  if (!isZstdFile(file)) return plainChunks(file)
  const which = decoder !== "auto" ? decoder : hasNodeZstd() ? "node" : hasZstdCli() ? "cli" : "js"
  return which === "node" ? nodeChunks(file) : which === "cli" ? cliChunks(file) : jsChunks(file)
}
