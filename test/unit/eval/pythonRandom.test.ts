import { describe, expect, it } from "vitest"
import { PythonRandom } from "../../../src/eval/pythonRandom.ts"

// The streams and samples are compared with CPython's in test/oracle/eval/pythonRandom.test.ts.
describe("PythonRandom", () => {
  it("refuses samples larger than the population, like Python's ValueError", () => {
    expect(() => new PythonRandom(1).sample([1, 2], 3)).toThrow(/larger than population/)
    expect(() => new PythonRandom(1.5)).toThrow(TypeError)
  })
})
