import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { diffManifests, firstDifference, readManifest } from "../../../src/audit/Manifest.ts"
import { StatCache } from "../../../src/store/ContentHasher.ts"

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "fp-manifest-"))

const tree = (root: string, files: Record<string, Buffer | string>) => {
  for (const [rel, data] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true })
    fs.writeFileSync(path.join(root, rel), data)
  }
}

/** The first differing offset, the obvious way. */
const naiveFirstDifference = (a: Buffer, b: Buffer): number | null => {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return i
  return a.length === b.length ? null : Math.min(a.length, b.length)
}

describe("manifests", () => {
  it("hash directories and files exactly as the store does", () => {
    const root = tmp()
    tree(root, { "b/x.bin": crypto.randomBytes(5000), "a.txt": "a", "b/c/d": "" })
    fs.mkdirSync(path.join(root, "empty"))
    const manifest = readManifest(root)!
    const store = new StatCache([]).hashPath(root)!
    expect(manifest.hash).toBe(store.hash)
    expect(manifest.size).toBe(store.size)
    expect([...manifest.files.keys()]).toEqual(["a.txt", "b/c/d", "b/x.bin"])
    const file = path.join(root, "a.txt")
    expect(readManifest(file)!.hash).toBe(new StatCache([]).hashPath(file)!.hash)
    expect(readManifest(path.join(root, "nothing"))).toBeUndefined()
  })

  it("find the first differing byte", () => {
    const dir = tmp()
    for (let trial = 0; trial < 20; trial++) {
      const a = crypto.randomBytes(1 + Math.floor(Math.random() * 3_000_000))
      const b = Buffer.from(a)
      const kind = trial % 3
      const at = Math.floor(Math.random() * b.length)
      if (kind === 0) b[at] = b[at]! ^ 0x80
      const c = kind === 1
        ? b.subarray(0, Math.floor(Math.random() * b.length))
        : kind === 2
        ? Buffer.concat([b, Buffer.from("x")])
        : b
      fs.writeFileSync(path.join(dir, "a"), a)
      fs.writeFileSync(path.join(dir, "c"), c)
      expect(firstDifference(path.join(dir, "a"), path.join(dir, "c"))).toBe(naiveFirstDifference(a, c))
    }
  })

  it("list what differs between a stored and a rebuilt directory, file by file", () => {
    const stored = tmp()
    const rebuilt = tmp()
    tree(stored, { "same": "1", "changed": "abcdef", "gone": "x" })
    tree(rebuilt, { "same": "1", "changed": "abXdef", "new": "y" })
    expect(diffManifests(
      { root: stored, manifest: readManifest(stored)! },
      { root: rebuilt, manifest: readManifest(rebuilt)! }
    )).toEqual([
      { path: "changed", change: "differs", storedSize: 6, rebuiltSize: 6, firstDifference: 2 },
      { path: "gone", change: "missing", storedSize: 1, rebuiltSize: null, firstDifference: null },
      { path: "new", change: "extra", storedSize: null, rebuiltSize: 1, firstDifference: null }
    ])
  })
})
