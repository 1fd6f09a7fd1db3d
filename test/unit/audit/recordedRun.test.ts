import { describe, expect, it } from "vitest"
import { parseRunArgv } from "../../../src/audit/RecordedRun.ts"

describe("recorded run command lines", () => {
  it("finds the pipeline, --config settings and --gpus wherever they are", () => {
    expect(
      parseRunArgv(
        ["run", "--preset", "tiny", "scaling-suite", "--config", "corpus=/d/x=y", "--gpus=0,1", "-j", "4", "--json"],
        "scaling-suite"
      )
    ).toEqual({ pipeline: "scaling-suite", config: { corpus: "/d/x=y" }, gpus: "0,1" })
  })

  it("prefers a module path over stray words, and the recorded name over both", () => {
    expect(parseRunArgv(["run", "/p/sub.ts", "--workspace", "/w"], "sub").pipeline).toBe("/p/sub.ts")
    expect(parseRunArgv(["run", "x", "toy"], "toy").pipeline).toBe("toy")
    expect(parseRunArgv([], "toy")).toEqual({ pipeline: "toy", config: {}, gpus: undefined })
  })
})
