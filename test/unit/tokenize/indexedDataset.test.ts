import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { makeRng } from "../../../scripts/corpus/prng.ts"
import {
  dtypeForVocabSize,
  encodeIndex,
  IndexedDatasetWriter,
  mergeIndexedDatasets,
  readIndexedDataset
} from "../../../src/data/IndexedDataset.ts"
import { pythonWith } from "../../support/python.ts"

const PY_WRITER = path.join(import.meta.dirname, "megatron_idx.py")

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), "idx-"))

const randomDocs = (seed: number, n: number, maxId: number): Array<Array<number>> => {
  const rng = makeRng(seed)
  return Array.from(
    { length: n },
    () => rng.next() < 0.1 ? [] : Array.from({ length: 1 + rng.int(300) }, () => rng.int(maxId))
  )
}

const write = (prefix: string, dtype: "uint16" | "int32", docs: Array<Array<number>>): void => {
  // A tiny buffer forces many flushes through the streaming path.
  const w = new IndexedDatasetWriter(prefix, dtype, 97)
  for (const d of docs) w.addDocument(Uint32Array.from(d))
  w.finalize()
}

const pythonWrite = (prefix: string, dtype: string, docs: Array<Array<number>>): void => {
  const spec = path.join(path.dirname(prefix), "spec.json")
  fs.writeFileSync(spec, JSON.stringify({ prefix, dtype, documents: docs }))
  const r = spawnSync(pythonWith("numpy"), [PY_WRITER, spec], { encoding: "utf8" })
  expect(r.status, r.stderr).toBe(0)
}

describe("IndexedDataset", () => {
  it("chooses uint16 below 65500 ids, int32 above", () => {
    expect(dtypeForVocabSize(50277)).toBe("uint16")
    expect(dtypeForVocabSize(65499)).toBe("uint16")
    expect(dtypeForVocabSize(65500)).toBe("int32")
    expect(dtypeForVocabSize(128256)).toBe("int32")
  })

  it("writes the same bytes as an independent numpy writer", () => {
    for (const [dtype, maxId] of [["uint16", 50277], ["int32", 200000]] as const) {
      const dir = tmp()
      const docs = randomDocs(dtype === "uint16" ? 1 : 2, 500, maxId)
      docs.unshift([])
      docs.push([])
      write(path.join(dir, "ours"), dtype, docs)
      pythonWrite(path.join(dir, "theirs"), dtype, docs)
      expect(fs.readFileSync(path.join(dir, "ours.idx")).equals(fs.readFileSync(path.join(dir, "theirs.idx")))).toBe(
        true
      )
      expect(fs.readFileSync(path.join(dir, "ours.bin")).equals(fs.readFileSync(path.join(dir, "theirs.bin")))).toBe(
        true
      )
    }
  })

  it("reads back what it wrote; empty documents repeat the document index", async () => {
    const dir = tmp()
    const docs = [[5, 6, 7], [], [], [65499], [1, 2]]
    write(path.join(dir, "d"), "uint16", docs)
    const ds = await Effect.runPromise(readIndexedDataset(path.join(dir, "d")))
    expect(ds.dtype).toBe("uint16")
    expect(Array.from(ds.sequenceLengths)).toEqual([3, 1, 2])
    expect(Array.from(ds.sequencePointers)).toEqual([0, 6, 8])
    expect(Array.from(ds.documentIndices)).toEqual([0, 1, 1, 1, 2, 3])
    expect(ds.documentCount).toBe(5)
    expect(Array.from(ds.sequence(1))).toEqual([65499])
    expect(Array.from(ds.tokens)).toEqual([5, 6, 7, 65499, 1, 2])
  })

  it("writes atomically: nothing under the final names before finalize, nothing left after abort", () => {
    const dir = tmp()
    const w = new IndexedDatasetWriter(path.join(dir, "x"), "uint16", 4)
    w.addDocument([1, 2, 3, 4, 5, 6])
    expect(fs.existsSync(path.join(dir, "x.bin"))).toBe(false)
    expect(fs.existsSync(path.join(dir, "x.idx"))).toBe(false)
    w.abort()
    expect(fs.readdirSync(dir)).toEqual([])
  })

  it("reports corrupt files clearly", async () => {
    const dir = tmp()
    const prefix = path.join(dir, "c")
    write(prefix, "uint16", [[1, 2, 3], [4]])
    const idx = fs.readFileSync(prefix + ".idx")
    const fail = async () => (await Effect.runPromise(Effect.flip(readIndexedDataset(prefix)))).message

    fs.writeFileSync(prefix + ".idx", Buffer.concat([Buffer.from("XXIDIDX\0\0"), idx.subarray(9)]))
    expect(await fail()).toMatch(/bad magic/)
    const v2 = Buffer.from(idx)
    v2.writeBigUInt64LE(2n, 9)
    fs.writeFileSync(prefix + ".idx", v2)
    expect(await fail()).toMatch(/unsupported version 2/)
    fs.writeFileSync(prefix + ".idx", idx.subarray(0, idx.length - 3))
    expect(await fail()).toMatch(/does not match 2 sequences and 3 document indices/)
    fs.writeFileSync(prefix + ".idx", idx)
    fs.writeFileSync(prefix + ".bin", Buffer.alloc(6))
    expect(await fail()).toMatch(/\.bin has 6 bytes but the index describes 8/)
    fs.rmSync(prefix + ".bin")
    expect(await fail()).toMatch(/cannot stat|cannot read/)
  })

  it("merges like merge_datasets.py: document indices offset by the sequences before", async () => {
    const dir = tmp()
    const parts = [randomDocs(3, 50, 60000), [[], [7]], randomDocs(4, 70, 60000)]
    parts.forEach((docs, i) => write(path.join(dir, `p${i}`), "uint16", docs))
    const result = await Effect.runPromise(
      mergeIndexedDatasets(parts.map((_, i) => path.join(dir, `p${i}`)), path.join(dir, "m"))
    )
    expect(result.documents).toBe(parts.flat().length)
    // Merging equals writing all documents in one dataset.
    pythonWrite(path.join(dir, "all"), "uint16", parts.flat())
    expect(fs.readFileSync(path.join(dir, "m.idx")).equals(fs.readFileSync(path.join(dir, "all.idx")))).toBe(true)
    expect(fs.readFileSync(path.join(dir, "m.bin")).equals(fs.readFileSync(path.join(dir, "all.bin")))).toBe(true)
  })

  it("refuses to merge different dtypes", async () => {
    const dir = tmp()
    write(path.join(dir, "a"), "uint16", [[1]])
    write(path.join(dir, "b"), "int32", [[1]])
    const error = await Effect.runPromise(
      Effect.flip(mergeIndexedDatasets([path.join(dir, "a"), path.join(dir, "b")], path.join(dir, "m")))
    )
    expect(error.reason).toMatch(/dtype int32 differs from uint16/)
    expect(fs.existsSync(path.join(dir, "m.idx"))).toBe(false)
  })

  it("encodes an empty index", () => {
    const bytes = encodeIndex("uint16", new Int32Array(0), [0])
    expect(bytes.length).toBe(34 + 8)
  })
})
