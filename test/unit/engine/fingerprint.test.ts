import { describe, expect, it } from "vitest"
import { canonicalJson, diffParams, fingerprint } from "../../../src/engine/Fingerprint.ts"

const base = {
  stageId: "s",
  version: "1",
  params: { a: 1, b: { c: 2 } },
  inputs: { x: "h1" },
  workerHash: null,
  sources: {}
}

describe("fingerprints", () => {
  it("are independent of key order", () => {
    expect(canonicalJson({ b: 1, a: { d: 1, c: [3, { z: 1, y: 2 }] } })).toBe(
      "{\"a\":{\"c\":[3,{\"y\":2,\"z\":1}],\"d\":1},\"b\":1}"
    )
    expect(fingerprint(base)).toBe(fingerprint({ ...base, params: { b: { c: 2 }, a: 1 } }))
  })

  it("change with every part", () => {
    const fp = fingerprint(base)
    expect(fingerprint({ ...base, stageId: "t" })).not.toBe(fp)
    expect(fingerprint({ ...base, version: "2" })).not.toBe(fp)
    expect(fingerprint({ ...base, params: { a: 1, b: { c: 3 } } })).not.toBe(fp)
    expect(fingerprint({ ...base, inputs: { x: "h2" } })).not.toBe(fp)
    expect(fingerprint({ ...base, inputs: { y: "h1" } })).not.toBe(fp)
    expect(fingerprint({ ...base, workerHash: "w" })).not.toBe(fp)
    expect(fingerprint({ ...base, sources: { "/data/a": "h" } })).not.toBe(fp)
  })

  it("diffParams names nested keys with old and new values", () => {
    expect(diffParams({ a: 1, m: { h: 64, l: 2 } }, { a: 1, m: { h: 128, l: 2 }, n: "x" })).toEqual([
      { key: "m.h", from: "64", to: "128" },
      { key: "n", from: undefined, to: "\"x\"" }
    ])
  })
})
