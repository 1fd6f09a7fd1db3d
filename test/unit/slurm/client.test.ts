/**
 * The Slurm client against stand-ins for Slurm's commands on PATH, which record the arguments they
 * were given: what reaches sbatch is what the settings said, word for word.
 */
import { it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, describe, expect } from "vitest"
import { SlurmClient } from "../../../src/slurm/SlurmClient.ts"

const originalPath = process.env.PATH

afterEach(() => {
  process.env.PATH = originalPath
})

/** A fake `sbatch` that writes its arguments, one per line (JSON), and answers with a job id. */
const fakeSbatch = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fp-slurm-client-"))
  const record = path.join(dir, "args.jsonl")
  fs.writeFileSync(
    path.join(dir, "sbatch"),
    `#!${process.execPath}\nrequire("node:fs").writeFileSync(${
      JSON.stringify(record)
    }, process.argv.slice(2).map((a) => JSON.stringify(a)).join("\\n"))\nconsole.log("4242")\n`,
    { mode: 0o755 }
  )
  process.env.PATH = `${dir}${path.delimiter}${originalPath ?? ""}`
  return {
    dir,
    args: () => fs.readFileSync(record, "utf8").split("\n").map((l) => JSON.parse(l) as string)
  }
}

describe("Slurm client", () => {
  // Runs the fake sbatch as a real child process.
  it.live(
    "gives sbatch each extra flag as one argument, before the script, with nothing a shell would expand",
    () =>
      Effect.gen(function*() {
        const sbatch = fakeSbatch()
        const script = path.join(sbatch.dir, "job.sh")
        fs.writeFileSync(script, "#!/bin/bash\n")
        const flags = ["--comment=a b; $(touch pwned) `id`", "--exclusive", "-p", "gpu"]
        const id = yield* Effect.flatMap(SlurmClient, (client) => client.submit(script, flags)).pipe(
          Effect.provide(SlurmClient.Default)
        )
        expect(id).toBe("4242")
        expect(sbatch.args()).toEqual(["--parsable", ...flags, script])
        expect(fs.existsSync(path.join(sbatch.dir, "pwned"))).toBe(false)
        expect(fs.existsSync(path.join(process.cwd(), "pwned"))).toBe(false)
      })
  )
})
