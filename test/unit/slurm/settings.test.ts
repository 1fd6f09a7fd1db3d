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
      "Slurm settings: --config slurm.time: expected a Slurm time limit (minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS or UNLIMITED), got \"two days\""
    )
    expect(left({ "slurm.submitRate": "fast" }).message).toContain("--config slurm.submitRate")
    expect(left({ "slurm.partiton": "gpu" }).message).toContain("unknown setting")
    expect(left({ "slurm.stage.train/*.walltime": "1" }).message).toContain("expected slurm.stage.<stage glob>")
    expect(left({ "slurm.stage.train/*.time": "soon" }).message).toContain(
      "--config slurm.stage.train/*.time: expected"
    )
    // The entry that set the bad value, not another entry of the same rule.
    expect(left({ "slurm.stage.train/*.time": "1", "slurm.stage.train/*.qos": "a,b" }).message).toBe(
      "Slurm settings: --config slurm.stage.train/*.qos: contains a comma (expected one QOS name)"
    )
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "fp-slurm-settings-")), "bad.json")
    fs.writeFileSync(file, JSON.stringify({ stages: [{ match: "x", time: "never" }] }))
    expect(left({ slurm: file }).message).toContain(
      `Slurm settings: ${file}: stages.0.time: expected a Slurm time limit`
    )
  })

  it("refuses a control character in any setting, naming the setting: it would end an #SBATCH line", () => {
    for (const key of ["partition", "account", "qos", "time", "sbatch", "node"]) {
      expect(left({ [`slurm.${key}`]: "gpu\n#SBATCH --wrap=rm" }).message).toBe(
        `Slurm settings: --config slurm.${key}: contains a newline`
      )
    }
    expect(left({ "slurm.stage.train/*.partition": "a\rb" }).message).toBe(
      "Slurm settings: --config slurm.stage.train/*.partition: contains a carriage return"
    )
    expect(left({ "slurm.sbatch": "--comment=a\u0007" }).message).toContain("contains a control character (U+0007)")
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "fp-slurm-settings-")), "cluster.json")
    fs.writeFileSync(
      file,
      JSON.stringify({ account: "flame", stages: [{ match: "train/*", sbatch: ["--exclusive", "--comment=x\ny"] }] })
    )
    expect(left({ slurm: file }).message).toBe(`Slurm settings: ${file}: stages.0.sbatch.1: contains a newline`)
    fs.writeFileSync(file, JSON.stringify({ qos: "high\n" }))
    expect(left({ slurm: file }).message).toBe(`Slurm settings: ${file}: qos: contains a newline`)
  })

  it("partition, account and QOS are names: no whitespace or #SBATCH syntax; a partition may be a list", () => {
    expect(right({ "slurm.partition": "gpu,gpu-preempt", "slurm.account": "flame_moe-2", "slurm.qos": "high.1" }))
      .toMatchObject({ partition: "gpu,gpu-preempt", account: "flame_moe-2", qos: "high.1" })
    expect(left({ "slurm.partition": "gpu debug" }).message).toBe(
      "Slurm settings: --config slurm.partition: contains whitespace (expected a partition name)"
    )
    expect(left({ "slurm.partition": "gpu,,debug" }).message).toContain("has an empty name in its list")
    expect(left({ "slurm.account": "a,b" }).message).toContain(
      "slurm.account: contains a comma (expected one account name)"
    )
    expect(left({ "slurm.account": "flame#x" }).message).toContain("slurm.account: contains \"#\"")
    expect(left({ "slurm.qos": "" }).message).toContain("slurm.qos: is empty")
    expect(left({ "slurm.partition": "--wrap=x" }).message).toContain("starts with '-'")
  })

  it("time limits in Slurm's formats only", () => {
    for (const time of ["30", "30:15", "4:00:00", "2-12", "2-12:30", "14-00:00:00", "UNLIMITED", "infinite"]) {
      expect(right({ "slurm.time": time }).time).toBe(time)
    }
    for (const time of ["1h", "-1", "2-", "1:2:3:4", "2-1:2:3:4", "10 ", ":30", "1-2-3"]) {
      expect(left({ "slurm.time": time }).message).toContain("slurm.time: expected a Slurm time limit")
    }
  })

  it("extra sbatch flags are flags, each followed by at most one value: sbatch would take a stray word as the script", () => {
    expect(right({ "slurm.sbatch": "-p gpu --exclusive --constraint h100" }).sbatch).toEqual([
      "-p",
      "gpu",
      "--exclusive",
      "--constraint",
      "h100"
    ])
    expect(left({ "slurm.sbatch": "job.sh --exclusive" }).message).toBe(
      "Slurm settings: --config slurm.sbatch: expected flags starting with '-', got \"job.sh\" first"
    )
    expect(left({ "slurm.sbatch": "-p gpu other.sh" }).message).toContain(
      "\"other.sh\" follows the value \"gpu\": expected a flag starting with '-'"
    )
    expect(left({ "slurm.stage.eval/*.sbatch": "--exclusive ''" }).message).toBe(
      "Slurm settings: --config slurm.stage.eval/*.sbatch: sbatch.1: is an empty flag"
    )
  })

  it("splits flags as a shell would", () => {
    expect(splitFlags("--a=1  -p 'g p' --c=\"x y\"")).toEqual(["--a=1", "-p", "g p", "--c=x y"])
    expect(splitFlags("")).toEqual([])
  })
})
