import { describe, expect, it } from "vitest"
import { JsonFileError, lineAndColumn, parseJsonText } from "../../../src/domain/JsonFile.ts"

/** Naive reference: split the text before the offset into lines. */
const naive = (text: string, offset: number) => {
  const before = text.slice(0, offset).split("\n")
  return { line: before.length, column: before[before.length - 1]!.length + 1 }
}

describe("JSON from a user's file", () => {
  it("line and column agree with a naive split", () => {
    const text = "{\n  \"a\": 1,\n\n  \"b\": [1,\n 2]\n}"
    for (let offset = 0; offset <= text.length; offset++) {
      expect(lineAndColumn(text, offset)).toEqual(naive(text, offset))
    }
  })

  it.each([
    ["{\"model\": {\"vocab\": {\"a\": 1,}}}", 1, 29],
    ["{\n  \"model\": {\n    \"vocab\": {\"a\": 1,}\n  }\n}", 3, 22],
    ["{\n  \"a\": 1\n", 3, 1],
    ["", 1, 1]
  ])("a syntax error names file, line and column: %j", (text, line, column) => {
    let error: unknown
    try {
      parseJsonText(text, "tok.json")
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(JsonFileError)
    const e = error as JsonFileError
    expect([e.line, e.column]).toEqual([line, column])
    expect(e.message).toMatch(new RegExp(`^tok\\.json:${line}:${column}: invalid JSON: `))
    expect(e.message).not.toMatch(/position/)
  })
})
