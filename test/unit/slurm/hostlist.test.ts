import { describe, expect, it } from "vitest"
import { expandHostlist, firstHost } from "../../../src/slurm/Hostlist.ts"

describe("Slurm hostlists", () => {
  it("expands ranges with zero padding, lists, and several bracket groups", () => {
    expect(expandHostlist("vm")).toEqual(["vm"])
    expect(expandHostlist("gpu[001-003,7],login1")).toEqual(["gpu001", "gpu002", "gpu003", "gpu7", "login1"])
    expect(expandHostlist("rack[1-2]-n[8-9]")).toEqual(["rack1-n8", "rack1-n9", "rack2-n8", "rack2-n9"])
    expect(expandHostlist("a[09-11]")).toEqual(["a09", "a10", "a11"])
  })

  it("names no host for a pending job", () => {
    expect(expandHostlist("")).toEqual([])
    expect(expandHostlist("(null)")).toEqual([])
    expect(firstHost("")).toBeUndefined()
    expect(firstHost("node[12-15]")).toBe("node12")
  })
})
