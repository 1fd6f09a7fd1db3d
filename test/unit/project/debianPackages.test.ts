// The README's quick start lists exactly the Debian packages CI installs (.ci/debian-packages).
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..")

describe("Debian packages", () => {
  it("README.md's apt-get line names the packages of .ci/debian-packages, in order", () => {
    const listed = fs.readFileSync(path.join(root, ".ci", "debian-packages"), "utf8")
      .split("\n")
      .map((line) => line.replace(/#.*/, "").trim())
      .filter((line) => line !== "")
    const readme = fs.readFileSync(path.join(root, "README.md"), "utf8")
    const block = /<!-- debian-packages -->\s*\n\s*apt-get install ([^\n]+)\n<!-- \/debian-packages -->/.exec(readme)
    expect(block, "README.md has the debian-packages block").not.toBeNull()
    expect(block![1]!.trim().split(/\s+/)).toEqual(listed)
    expect(listed).toContain("python3-torch")
  })
})
