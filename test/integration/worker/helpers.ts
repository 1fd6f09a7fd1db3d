// Test helpers for the worker: a Megatron indexed-dataset writer (independent of the C++ reader),
// a synthetic corpus with learnable structure, and a runner that captures the protocol channel.
import { execa } from "execa"
import { mkdirSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..")
export const kernelsDir = join(repoRoot, "kernels")
export const workerPath = join(kernelsDir, "build", "flame-worker")

/** A small MoE model the worker trains in a second on the synthetic corpus: a dense layer, then two MoE layers. */
export const testModel = {
  vocabSize: 64,
  hiddenSize: 64,
  numLayers: 3,
  numAttentionHeads: 4,
  ffnHiddenSize: 128,
  moeFfnHiddenSize: 32,
  numExperts: 8,
  topK: 2,
  moeLayers: "[0]*1+[1]*2",
  seqLength: 32
}

/** Writes PREFIX.bin / PREFIX.idx in Megatron's MMIDIDX format (uint16 tokens, one sequence per non-empty document). */
export const writeIndexedDataset = (prefix: string, docs: ReadonlyArray<ReadonlyArray<number>>): void => {
  mkdirSync(dirname(prefix), { recursive: true })
  const nonEmpty = docs.filter((d) => d.length > 0)
  const total = nonEmpty.reduce((n, d) => n + d.length, 0)
  const bin = Buffer.alloc(total * 2)
  let pos = 0
  for (const d of nonEmpty) {
    for (const t of d) {
      bin.writeUInt16LE(t, pos)
      pos += 2
    }
  }
  writeFileSync(prefix + ".bin", bin)
  const s = nonEmpty.length
  const idx = Buffer.alloc(9 + 8 + 1 + 8 + 8 + 4 * s + 8 * s + 8 * (docs.length + 1))
  let o = idx.write("MMIDIDX\x00\x00", 0, "latin1")
  o = idx.writeBigUInt64LE(1n, o)
  o = idx.writeUInt8(8, o)
  o = idx.writeBigUInt64LE(BigInt(s), o)
  o = idx.writeBigUInt64LE(BigInt(docs.length + 1), o)
  for (const d of nonEmpty) o = idx.writeInt32LE(d.length, o)
  let ptr = 0n
  for (const d of nonEmpty) {
    o = idx.writeBigInt64LE(ptr, o)
    ptr += BigInt(d.length * 2)
  }
  let seqs = 0n
  o = idx.writeBigInt64LE(0n, o)
  for (const d of docs) {
    if (d.length > 0) seqs += 1n
    o = idx.writeBigInt64LE(seqs, o)
  }
  writeFileSync(prefix + ".idx", idx)
}

/** Deterministic LCG in [0, 1). */
const lcg = (seed: number) => {
  let s = seed >>> 0
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return s / 4294967296
  }
}

/**
 * Documents over a vocabulary of `vocab` ids (0 = EOD): each next token follows a fixed
 * permutation with probability 0.9, else a uniformly random token. The conditional entropy is far
 * below the unigram entropy, so a model that learns anything beats the unigram baseline.
 */
export const syntheticCorpus = (numDocs: number, vocab: number, seed = 1): Array<Array<number>> => {
  const rand = lcg(seed)
  const docs: Array<Array<number>> = []
  for (let i = 0; i < numDocs; i++) {
    const len = 20 + Math.floor(rand() * 180)
    let t = 1 + Math.floor(rand() * (vocab - 1))
    const d: Array<number> = []
    for (let j = 0; j < len; j++) {
      d.push(t)
      t = rand() < 0.9 ? ((5 * t + 3) % (vocab - 1)) + 1 : 1 + Math.floor(rand() * (vocab - 1))
    }
    d.push(0)
    docs.push(d)
  }
  return docs
}

export const unigramEntropy = (docs: ReadonlyArray<ReadonlyArray<number>>): number => {
  const counts = new Map<number, number>()
  let n = 0
  for (const d of docs) {
    for (const t of d) {
      counts.set(t, (counts.get(t) ?? 0) + 1)
      n++
    }
  }
  let h = 0
  for (const c of counts.values()) h -= (c / n) * Math.log(c / n)
  return h
}

export interface ProtocolMessage {
  readonly type: string
  readonly [key: string]: unknown
}

export interface WorkerRun {
  readonly exitCode: number
  readonly stderr: string
  readonly stdout: string
  readonly messages: ReadonlyArray<ProtocolMessage>
}

/** Runs the worker with the protocol on fd 3 (as the engine does) and parses every line. */
export const runWorker = async (args: ReadonlyArray<string>): Promise<WorkerRun> => {
  const proc = execa(workerPath, args, {
    reject: false,
    env: { FLAME_PROTOCOL_FD: "3", OMP_NUM_THREADS: "2" },
    stdio: ["ignore", "pipe", "pipe", "pipe"]
  })
  const chunks: Array<Buffer> = []
  const channel = proc.stdio[3]
  if (channel !== null && channel !== undefined && "on" in channel) {
    channel.on("data", (c: Buffer) => chunks.push(c))
  }
  const r = await proc
  const text = Buffer.concat(chunks).toString("utf8")
  const messages = text.split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l) as ProtocolMessage)
  return { exitCode: r.exitCode ?? -1, stderr: String(r.stderr), stdout: String(r.stdout), messages }
}

export const writeJson = (path: string, value: unknown): string => {
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(path, JSON.stringify(value, null, 1))
  return path
}

export const metricValues = (run: WorkerRun, name: string): Array<number> =>
  run.messages.filter((m) => m.type === "metric" && m["name"] === name).map((m) => m["value"] as number)

export const resultOf = (run: WorkerRun): Record<string, unknown> => {
  const r = run.messages.find((m) => m.type === "result")
  if (r === undefined) throw new Error(`no result message; exit ${run.exitCode}; stderr: ${run.stderr}`)
  return r["value"] as Record<string, unknown>
}
