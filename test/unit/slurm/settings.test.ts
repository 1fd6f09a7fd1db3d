import { Either } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { globMatches, settingsForStage, slurmSettingsFromConfig, splitFlags } from "../../../src/slurm/Settings.ts"

const decode = (config: Record<string, string>) => slurmSettingsFromConfig(config)
const right = (config: Record<string, string>) => Either.getOrThrow(decode(config))
const left = (config: Record<string, string>) => {
  const result = decode(config)
  if (Either.isRight(result)) throw new Error("expected an error")
  return result.left
}

describe("Slurm settings from the pipeline config", () => {
  it("has defaults, and takes --config slurm.<key> values with their types", () => {
    const defaults = right({})
    expect(defaults).toMatchObject({
      submitRate: 2,
      submitBurst: 5,
      poll: 3,
      arrays: true,
      maxResubmits: 3,
      gpusPerNode: "auto"
    })
    const s = right({
      "slurm.partition": "gpu",
      "slurm.account": "flame",
      "slurm.qos": "high",
      "slurm.time": "2-00:00:00",
      "slurm.sbatch": "--exclusive --constraint=\"h100 nvlink\"",
      "slurm.submitRate": "0.5",
      "slurm.arrays": "false",
      "slurm.gpusPerNode": "8",
      corpus: "/data/dclm"
    })
    expect(s).toMatchObject({
      partition: "gpu",
      account: "flame",
      qos: "high",
      time: "2-00:00:00",
      submitRate: 0.5,
      arrays: false,
      gpusPerNode: 8
    })
    expect(s.sbatch).toEqual(["--exclusive", "--constraint=h100 nvlink"])
  })

  it("per-stage rules by glob; later rules win; the key is what follows the last dot", () => {
    const s = right({
      "slurm.time": "01:00:00",
      "slurm.stage.train/*.time": "14-00:00:00",
      "slurm.stage.train/*.sbatch": "--exclusive",
      "slurm.stage.train/flame-moe-1.7b.partition": "big",
      "slurm.stage.eval/*.array": "false"
    })
    expect(settingsForStage(s, "train/flame-moe-1.7b")).toEqual({
      partition: "big",
      account: undefined,
      qos: undefined,
      time: "14-00:00:00",
      sbatch: ["--exclusive"],
      array: true
    })
    expect(settingsForStage(s, "eval/flame-moe-38m/212")).toMatchObject({ time: "01:00:00", array: false })
    expect(globMatches("eval/*/212", "eval/flame-moe-38m/212")).toBe(true)
    expect(globMatches("train/*", "tokenize/merge")).toBe(false)
  })

  it("reads a settings file, which --config entries override", () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "fp-slurm-settings-")), "cluster.json")
    fs.writeFileSync(
      file,
      JSON.stringify({ partition: "a", poll: 10, stages: [{ match: "train/*", time: "3-00:00:00" }] })
    )
    const s = right({ slurm: file, "slurm.partition": "b", "slurm.stage.eval/*.time": "30" })
    expect(s).toMatchObject({ partition: "b", poll: 10 })
    expect(s.stages.map((r) => r.match)).toEqual(["train/*", "eval/*"])
  })

  it("names the entry and the key of a bad value", () => {
    expect(left({ "slurm.time": "two days" }).message).toBe(
      "Slurm settings (--config slurm.time): time: expected a Slurm time limit (minutes, HH:MM:SS, D-HH:MM:SS or UNLIMITED), got \"two days\""
    )
    expect(left({ "slurm.submitRate": "fast" }).message).toContain("--config slurm.submitRate")
    expect(left({ "slurm.partiton": "gpu" }).message).toContain("unknown setting")
    expect(left({ "slurm.stage.train/*.walltime": "1" }).message).toContain("expected slurm.stage.<stage glob>")
    expect(left({ "slurm.stage.train/*.time": "soon" }).message).toContain("--config slurm.stage.train/*.time")
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "fp-slurm-settings-")), "bad.json")
    fs.writeFileSync(file, JSON.stringify({ stages: [{ match: "x", time: "never" }] }))
    expect(left({ slurm: file }).message).toContain(`(${file}): stages.0.time`)
  })

  it("splits flags as a shell would", () => {
    expect(splitFlags("--a=1  -p 'g p' --c=\"x y\"")).toEqual(["--a=1", "-p", "g p", "--c=x y"])
    expect(splitFlags("")).toEqual([])
  })
})
