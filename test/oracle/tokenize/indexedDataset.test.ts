/**
 * The IndexedDataset writer and merge against an independent numpy writer of Megatron's format
 * (megatron_idx.py).
 */
import { it } from "@effect/vitest"
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect } from "vitest"
import { makeRng } from "../../../scripts/corpus/prng.ts"
import { IndexedDatasetWriter, mergeIndexedDatasets } from "../../../src/data/IndexedDataset.ts"
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

  // Runs the numpy writer as a child process: the test runs with the live clock and services.
  it.live("merges like merge_datasets.py: document indices offset by the sequences before", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const parts = [randomDocs(3, 50, 60000), [[], [7]], randomDocs(4, 70, 60000)]
      parts.forEach((docs, i) => write(path.join(dir, `p${i}`), "uint16", docs))
      const result = yield* mergeIndexedDatasets(parts.map((_, i) => path.join(dir, `p${i}`)), path.join(dir, "m"))
      expect(result.documents).toBe(parts.flat().length)
      // Merging equals writing all documents in one dataset.
      pythonWrite(path.join(dir, "all"), "uint16", parts.flat())
      expect(fs.readFileSync(path.join(dir, "m.idx")).equals(fs.readFileSync(path.join(dir, "all.idx")))).toBe(true)
      expect(fs.readFileSync(path.join(dir, "m.bin")).equals(fs.readFileSync(path.join(dir, "all.bin")))).toBe(true)
    }))
})
