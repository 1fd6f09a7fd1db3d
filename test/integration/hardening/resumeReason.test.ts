import { execa } from "execa"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { bin, cli, root, runJson, tempWorkspace } from "../../support/cli.ts"

const pipeline = path.join(root, "test/fixtures/pipelines/steps.ts")

/** Steps the counting stage has written into its staging directory so far. */
const stagedSteps = (ws: string): Array<string> => {
  const dir = path.join(ws, "staging", "count")
  if (!fs.existsSync(dir)) return []
  return fs.readdirSync(dir).flatMap((fp) => fs.readdirSync(path.join(dir, fp))).filter((f) => f.startsWith("step_"))
}

describe("a stage an interrupted run left half done", () => {
  it("is planned and started as a resumption, naming the execution and the point it continues from", async () => {
    const ws = tempWorkspace()
    const child = execa(process.execPath, [bin, "run", pipeline, "--workspace", ws], { cwd: root, reject: false })
    const start = Date.now()
    while (stagedSteps(ws).length < 3) {
      if (Date.now() - start > 60_000) throw new Error("no steps written")
      await new Promise((r) => setTimeout(r, 20))
    }
    child.kill("SIGKILL")
    await child
    const last = stagedSteps(ws).sort().at(-1)!

    const planned = await cli(["plan", pipeline, "--workspace", ws, "--json"])
    const entry = JSON.parse(planned.stdout).stages[0] as { reasons: Array<{ _tag: string; from?: string }> }
    expect(entry.reasons).toHaveLength(1)
    expect(entry.reasons[0]).toMatchObject({ _tag: "Resumable", from: last })
    const human = await cli(["plan", pipeline, "--workspace", ws])
    expect(human.stdout).toMatch(new RegExp(`resumes interrupted execution [0-9a-f]{8} from ${last}`))
    expect(human.stdout).not.toContain("never run")

    const resumed = await cli(["run", pipeline, "--workspace", ws])
    expect(resumed.exitCode, resumed.stderr).toBe(0)
    expect(resumed.stdout).toMatch(new RegExp(`resumes interrupted execution [0-9a-f]{8} from ${last}`))
    const result = (await runJson([pipeline, "--workspace", ws])).summary
    expect(result?.cached).toBe(1)
  })
})
