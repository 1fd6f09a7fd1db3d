import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { detectGpus, onPath } from "../../../src/engine/Environment.ts"

const dirs: Array<string> = []
const tempDir = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fp-env-"))
  dirs.push(dir)
  return dir
}
const savedPath = process.env.PATH
afterEach(() => {
  process.env.PATH = savedPath
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true })
})

describe("onPath", () => {
  it("finds an executable in any PATH entry, and neither a plain file nor a missing one", () => {
    const a = tempDir()
    const b = tempDir()
    fs.writeFileSync(path.join(b, "tool"), "#!/bin/sh\n", { mode: 0o755 })
    fs.writeFileSync(path.join(a, "data"), "not a program\n", { mode: 0o644 })
    const env = { PATH: [a, b].join(path.delimiter) }
    expect(onPath("tool", env)).toBe(true)
    expect(onPath("data", env)).toBe(false)
    expect(onPath("missing", env)).toBe(false)
    expect(onPath("tool", { PATH: a })).toBe(false)
  })

  it("leaves the answer to the spawn when there is no PATH", () => {
    expect(onPath("anything", {})).toBe(true)
  })
})

describe("detectGpus", () => {
  it("reads nvidia-smi's CSV when it is on PATH", () => {
    const bin = tempDir()
    fs.writeFileSync(
      path.join(bin, "nvidia-smi"),
      "#!/bin/sh\nprintf '0, NVIDIA H200, 570.86.15\\n1, NVIDIA H200, 570.86.15\\n'\n",
      { mode: 0o755 }
    )
    process.env.PATH = bin
    expect(detectGpus()).toEqual([
      { index: "0", name: "NVIDIA H200", driver: "570.86.15" },
      { index: "1", name: "NVIDIA H200", driver: "570.86.15" }
    ])
  })

  it("finds none, without spawning anything, when nvidia-smi is not on PATH", () => {
    process.env.PATH = tempDir()
    expect(detectGpus()).toEqual([])
  })
})
