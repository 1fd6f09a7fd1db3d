import { execa } from "execa"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import type { BatchJob } from "../../../src/slurm/JobScript.ts"
import {
  batchScript,
  directiveWord,
  optionNames,
  sbatchArguments,
  sbatchDirectives,
  shellQuote
} from "../../../src/slurm/JobScript.ts"
import type { StageSlurmSettings } from "../../../src/slurm/Settings.ts"

const settings: StageSlurmSettings = {
  partition: "gpu",
  account: "flame",
  qos: undefined,
  time: "2-00:00:00",
  sbatch: [],
  array: true
}

const job = (overrides: Partial<BatchJob> = {}): BatchJob => ({
  name: "flame-pipe:train/flame-moe-1.7b",
  resources: { cpus: 16, gpus: 8, memoryMb: 0, nodes: 4 },
  settings,
  tasks: [{ specPath: "/ws/slurm/b/task-0.json", logPath: "/ws/logs/train/x.log" }],
  slurmOutput: "/ws/slurm/b/slurm-%j.out",
  chdir: "/home/me/flame-pipe",
  requeue: true,
  command: ["/usr/bin/node", "/home/me/flame-pipe/bin/flame-pipe.js", "job", "scaling-suite"],
  ...overrides
})

describe("batch scripts", () => {
  it("carries the stage's resources and its Slurm settings as directives", () => {
    expect(sbatchDirectives(job())).toEqual([
      "--job-name=flame-pipe:train/flame-moe-1.7b",
      "--output=/ws/slurm/b/slurm-%j.out",
      "--open-mode=append",
      "--chdir=/home/me/flame-pipe",
      "--partition=gpu",
      "--account=flame",
      "--time=2-00:00:00",
      "--nodes=4",
      "--ntasks-per-node=1",
      "--cpus-per-task=16",
      "--gres=gpu:8",
      "--requeue"
    ])
    const small = sbatchDirectives(
      job({
        resources: { cpus: 1, gpus: 0, memoryMb: 512, nodes: 1 },
        settings: { ...settings, partition: undefined, account: undefined, time: undefined }
      })
    )
    expect(small).toContain("--mem=512M")
    expect(small.some((d) => d.startsWith("--gres") || d.startsWith("--partition"))).toBe(false)
  })

  it("lets extra sbatch flags replace generated ones, long or short, and conflicting GPU or memory forms", () => {
    const extra = ["-p", "debug", "--time=10", "--gpus-per-node=4", "--mem-per-cpu=4G", "--exclusive"]
    const withExtra = job({ settings: { ...settings, sbatch: extra } })
    const flags = sbatchDirectives(withExtra)
    expect(flags.filter((f) => /^--(partition|time|gres|mem)=/.test(f))).toEqual([])
    expect(flags).toContain("--account=flame")
    // The extra flags go to sbatch as arguments, one each; the script does not carry them.
    expect(sbatchArguments(withExtra)).toEqual(extra)
    const script = batchScript(withExtra)
    expect(script).not.toContain("exclusive")
    expect(script).not.toContain("debug")
    expect([...optionNames(["-A", "x", "-t5", "--qos=q"])]).toEqual(["account", "time", "qos"])
  })

  it("writes generated values as single #SBATCH words, quoted as sbatch reads them; refuses a control character", () => {
    expect(directiveWord("--nodes=4")).toBe("--nodes=4")
    // Checked against Slurm 22.05's sbatch: the job name came back as given.
    expect(directiveWord(`--job-name=a b#c"d'e\\f`)).toBe(`"--job-name=a b#c\\"d'e\\\\f"`)
    expect(() => batchScript(job({ chdir: "/home/me\n#SBATCH --wrap=x" }))).toThrow(
      "#SBATCH \"--chdir=/home/me\\n#SBATCH --wrap=x\": contains a newline"
    )
    const script = batchScript(job({ name: "flame-pipe:train/x y" }))
    expect(script.split("\n").filter((l) => l.startsWith("#SBATCH \"--job-name"))).toEqual([
      "#SBATCH \"--job-name=flame-pipe:train/x y\""
    ])
  })

  it("runs the task of its array index: spec and log chosen by SLURM_ARRAY_TASK_ID, output appended to the log", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fp-jobscript-"))
    const tasks = [0, 1, 2].map((i) => ({
      specPath: path.join(dir, `task ${i}.json`),
      logPath: path.join(dir, `log-${i}'s.log`)
    }))
    const script = path.join(dir, "job.sh")
    fs.writeFileSync(script, batchScript(job({ tasks, command: ["echo", "ran"] })))
    expect(fs.readFileSync(script, "utf8")).toContain("#SBATCH --array=0-2")
    await execa("bash", ["-n", script])
    for (const i of [0, 2]) {
      fs.writeFileSync(tasks[i]!.logPath, "before\n")
      await execa("bash", [script], { env: { SLURM_ARRAY_TASK_ID: String(i) } })
      expect(fs.readFileSync(tasks[i]!.logPath, "utf8")).toBe(`before\nran --spec ${tasks[i]!.specPath}\n`)
    }
    const outside = await execa("bash", [script], { env: { SLURM_ARRAY_TASK_ID: "7" }, reject: false })
    expect(outside.exitCode).toBe(2)
    expect(shellQuote("it's")).toBe(`'it'\\''s'`)
  })
})
