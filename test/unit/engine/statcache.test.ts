import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { StatCache } from "../../../src/store/ContentHasher.ts"

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "fp-stat-"))
const sha = (data: string | Buffer) => crypto.createHash("sha256").update(data).digest("hex")

describe("StatCache", () => {
  it("hashes a file's bytes, and does not read an unchanged file again", () => {
    const dir = tmp()
    const file = path.join(dir, "a.bin")
    const data = crypto.randomBytes(3 * 1024 * 1024 + 17)
    fs.writeFileSync(file, data)
    const cache = new StatCache([])
    expect(cache.hashPath(file)).toEqual({ kind: "file", hash: sha(data), size: data.length })
    expect(cache.bytesHashed).toBe(data.length)
    const persisted = new StatCache(cache.takeDirty())
    expect(persisted.hashPath(file)?.hash).toBe(sha(data))
    expect(persisted.bytesHashed).toBe(0)
  })

  it("notices a same-size edit through the modification time", () => {
    const dir = tmp()
    const file = path.join(dir, "a.txt")
    fs.writeFileSync(file, "aaaa")
    const cache = new StatCache([])
    cache.hashPath(file)
    fs.writeFileSync(file, "bbbb")
    const later = new Date(Date.now() + 5000)
    fs.utimesSync(file, later, later)
    expect(cache.hashPath(file)?.hash).toBe(sha("bbbb"))
  })

  it("hashes directories by relative paths and contents, and reports missing paths", () => {
    const a = tmp()
    const b = tmp()
    for (const root of [a, b]) {
      fs.mkdirSync(path.join(root, "sub"))
      fs.writeFileSync(path.join(root, "sub", "x"), "1")
      fs.writeFileSync(path.join(root, "y"), "2")
    }
    const cache = new StatCache([])
    const ha = cache.hashPath(a)!
    expect(ha.kind).toBe("dir")
    expect(ha.size).toBe(2)
    expect(cache.hashPath(b)!.hash).toBe(ha.hash)
    fs.renameSync(path.join(b, "y"), path.join(b, "z"))
    expect(cache.hashPath(b)!.hash).not.toBe(ha.hash)
    expect(cache.hashPath(path.join(a, "nope"))).toBeUndefined()
  })
  it("hashes a finished part ahead of time, and keeps the hashes when its directory is moved", async () => {
    const root = tmp()
    const staging = path.join(root, "staging")
    const checkpoint = path.join(staging, "iter_0000010")
    fs.mkdirSync(checkpoint, { recursive: true })
    const weights = crypto.randomBytes(9 * 1024 * 1024 + 5)
    fs.writeFileSync(path.join(checkpoint, "model.safetensors"), weights)
    fs.writeFileSync(path.join(checkpoint, "state.json"), "{}")
    const cache = new StatCache([])
    await cache.prehash(checkpoint)
    expect(cache.bytesHashed).toBe(weights.length + 2)
    // A file written after the part was announced is hashed at the end as usual.
    fs.writeFileSync(path.join(staging, "result.json"), "[]")

    const final = path.join(root, "artifacts")
    fs.renameSync(staging, final)
    cache.moved(staging, final)
    const hashed = cache.hashPath(final)
    expect(cache.bytesHashed).toBe(weights.length + 2 + 2)
    expect(hashed).toEqual(new StatCache([]).hashPath(final))
    expect(cache.takeDirty().map((r) => path.relative(root, r.path)).sort()).toEqual([
      path.join("artifacts", "iter_0000010", "model.safetensors"),
      path.join("artifacts", "iter_0000010", "state.json"),
      path.join("artifacts", "result.json")
    ])
  })
})
