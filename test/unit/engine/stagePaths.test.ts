import { Either, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { StageFailed } from "../../../src/domain/Errors.ts"
import { confinedOutput, FileName } from "../../../src/workspace/StagePaths.ts"

const decode = Schema.decodeUnknownEither(FileName)

describe("FileName", () => {
  it("takes plain file names", () => {
    for (const name of ["dclm-tiny-0000", "shard_00.jsonl", "tokenizer.json", "..hidden", "a..b", "iter_0000010"]) {
      expect(Either.isRight(decode(name)), name).toBe(true)
    }
  })

  it("refuses separators, dot names, empty names and control characters", () => {
    for (const name of ["", ".", "..", "../../../ESCAPED-shard", "a/b", "/etc", "a\\b", "a\u0000b", "a\nb", "\u007f"]) {
      expect(Either.isLeft(decode(name)), JSON.stringify(name)).toBe(true)
    }
  })
})

describe("a stage's output paths", () => {
  const stageDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "fp-confine-"))

  const refusal = (f: () => unknown): StageFailed => {
    try {
      f()
    } catch (error) {
      expect(error).toBeInstanceOf(StageFailed)
      return error as StageFailed
    }
    throw new Error("expected the path to be refused")
  }

  it("are inside the stage's directory", () => {
    const dir = stageDir()
    const output = confinedOutput("tokenize/a", dir)
    expect(output("dataset")).toBe(path.join(dir, "dataset"))
    expect(output("dataset", "a_text_document")).toBe(path.join(dir, "dataset", "a_text_document"))
    expect(output("dataset", "x/../y")).toBe(path.join(dir, "dataset", "y"))
  })

  it("refuse a name that resolves outside it, naming the stage and the name", () => {
    const output = confinedOutput("tokenize/dclm-tiny-0000", stageDir())
    const error = refusal(() => output("dataset", "../../../../../../ESCAPED-shard_text_document"))
    expect(error.message).toContain("stage tokenize/dclm-tiny-0000")
    expect(error.message).toContain("'dataset/../../../../../../ESCAPED-shard_text_document'")
    expect(error.message).toContain("outside the stage's directory")
    for (const name of ["..", "../x", "/etc/passwd", "", "."]) refusal(() => output(name))
    refusal(() => output("a\u0000b"))
  })

  it("refuse a path that a symbolic link inside the directory takes outside", () => {
    const dir = stageDir()
    const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), "fp-elsewhere-"))
    fs.symlinkSync(elsewhere, path.join(dir, "link"))
    fs.symlinkSync(path.join(elsewhere, "missing"), path.join(dir, "dangling"))
    const output = confinedOutput("s", dir)
    expect(refusal(() => output("link", "file")).message).toContain("symbolic link")
    expect(refusal(() => output("link")).message).toContain("symbolic link")
    refusal(() => output("dangling"))
  })
})
