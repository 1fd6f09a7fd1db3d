import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { standing, writeFence } from "../../../src/executor/remote/Fence.ts"
import { newestCheckpoint } from "../../../src/executor/remote/Resume.ts"

const outputs = ["iter_0000010", "iter_0000020", "iter_0000030"]
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "fp-slurm-resume-"))

describe("what a timed-out job resumes from", () => {
  it("the last declared output in staging; none before the first checkpoint", () => {
    const dir = tmp()
    expect(newestCheckpoint(dir, outputs)).toBeUndefined()
    fs.mkdirSync(path.join(dir, "iter_0000010"))
    fs.mkdirSync(path.join(dir, "iter_0000020"))
    expect(newestCheckpoint(dir, outputs)).toBe("iter_0000020")
  })

  it("with Megatron's tracker, not an iteration directory newer than it: a save cut short", () => {
    const dir = tmp()
    for (const name of outputs) fs.mkdirSync(path.join(dir, name))
    fs.writeFileSync(path.join(dir, "latest_checkpointed_iteration.txt"), "20")
    expect(newestCheckpoint(dir, outputs)).toBe("iter_0000020")
  })
})

describe("fence files", () => {
  it("an attempt is current when named, superseded by a later submission or restart, pending before", () => {
    const file = path.join(tmp(), "fences", "exec.json")
    const mine = { submission: 2, attempt: 1 }
    expect(standing(file, mine)).toBe("pending")
    writeFence(file, { submission: 2, attempt: 0 })
    expect(standing(file, mine)).toBe("pending")
    writeFence(file, mine)
    expect(standing(file, mine)).toBe("current")
    writeFence(file, { submission: 2, attempt: 2 })
    expect(standing(file, mine)).toBe("superseded")
    writeFence(file, { submission: 3, attempt: 0 })
    expect(standing(file, mine)).toBe("superseded")
    expect(standing(file, { submission: 4, attempt: 0 })).toBe("pending")
    // Replaced by rename: no temporary file stays behind.
    expect(fs.readdirSync(path.dirname(file))).toEqual(["exec.json"])
  })
})
