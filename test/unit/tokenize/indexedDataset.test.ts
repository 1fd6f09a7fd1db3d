import { it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect } from "vitest"
import {
  dtypeForVocabSize,
  encodeIndex,
  IndexedDatasetWriter,
  mergeIndexedDatasets,
  readIndexedDataset
} from "../../../src/data/IndexedDataset.ts"

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), "idx-"))

const write = (prefix: string, dtype: "uint16" | "int32", docs: Array<Array<number>>): void => {
  // A tiny buffer forces many flushes through the streaming path.
  const w = new IndexedDatasetWriter(prefix, dtype, 97)
  for (const d of docs) w.addDocument(Uint32Array.from(d))
  w.finalize()
}

describe("IndexedDataset", () => {
  it("chooses uint16 below 65500 ids, int32 above", () => {
    expect(dtypeForVocabSize(50277)).toBe("uint16")
    expect(dtypeForVocabSize(65499)).toBe("uint16")
    expect(dtypeForVocabSize(65500)).toBe("int32")
    expect(dtypeForVocabSize(128256)).toBe("int32")
  })

  it.effect("reads back what it wrote; empty documents repeat the document index", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const docs = [[5, 6, 7], [], [], [65499], [1, 2]]
      write(path.join(dir, "d"), "uint16", docs)
      const ds = yield* readIndexedDataset(path.join(dir, "d"))
      expect(ds.dtype).toBe("uint16")
      expect(Array.from(ds.sequenceLengths)).toEqual([3, 1, 2])
      expect(Array.from(ds.sequencePointers)).toEqual([0, 6, 8])
      expect(Array.from(ds.documentIndices)).toEqual([0, 1, 1, 1, 2, 3])
      expect(ds.documentCount).toBe(5)
      expect(Array.from(ds.sequence(1))).toEqual([65499])
      expect(Array.from(ds.tokens)).toEqual([5, 6, 7, 65499, 1, 2])
    }))

  it("writes atomically: nothing under the final names before finalize, nothing left after abort", () => {
    const dir = tmp()
    const w = new IndexedDatasetWriter(path.join(dir, "x"), "uint16", 4)
    w.addDocument([1, 2, 3, 4, 5, 6])
    expect(fs.existsSync(path.join(dir, "x.bin"))).toBe(false)
    expect(fs.existsSync(path.join(dir, "x.idx"))).toBe(false)
    w.abort()
    expect(fs.readdirSync(dir)).toEqual([])
  })

  it.effect("reports corrupt files clearly", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const prefix = path.join(dir, "c")
      write(prefix, "uint16", [[1, 2, 3], [4]])
      const idx = fs.readFileSync(prefix + ".idx")
      const fail = Effect.map(Effect.flip(readIndexedDataset(prefix)), (e) => e.message)

      fs.writeFileSync(prefix + ".idx", Buffer.concat([Buffer.from("XXIDIDX\0\0"), idx.subarray(9)]))
      expect(yield* fail).toMatch(/bad magic/)
      const v2 = Buffer.from(idx)
      v2.writeBigUInt64LE(2n, 9)
      fs.writeFileSync(prefix + ".idx", v2)
      expect(yield* fail).toMatch(/unsupported version 2/)
      fs.writeFileSync(prefix + ".idx", idx.subarray(0, idx.length - 3))
      expect(yield* fail).toMatch(/does not match 2 sequences and 3 document indices/)
      fs.writeFileSync(prefix + ".idx", idx)
      fs.writeFileSync(prefix + ".bin", Buffer.alloc(6))
      expect(yield* fail).toMatch(/\.bin has 6 bytes but the index describes 8/)
      fs.rmSync(prefix + ".bin")
      expect(yield* fail).toMatch(/cannot stat|cannot read/)
    }))

  it.effect("refuses to merge different dtypes", () =>
    Effect.gen(function*() {
      const dir = tmp()
      write(path.join(dir, "a"), "uint16", [[1]])
      write(path.join(dir, "b"), "int32", [[1]])
      const error = yield* Effect.flip(
        mergeIndexedDatasets([path.join(dir, "a"), path.join(dir, "b")], path.join(dir, "m"))
      )
      expect(error.reason).toMatch(/dtype int32 differs from uint16/)
      expect(fs.existsSync(path.join(dir, "m.idx"))).toBe(false)
    }))

  it("encodes an empty index", () => {
    const bytes = encodeIndex("uint16", new Int32Array(0), [0])
    expect(bytes.length).toBe(34 + 8)
  })
})
