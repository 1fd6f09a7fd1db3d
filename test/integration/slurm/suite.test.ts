/**
 * A slice of `scaling-suite --preset tiny` through Slurm: the kernel build, the per-shard tokenization
 * (one job array), training of the smallest scale with the CPU worker, and the evaluation and trace
 * of its first checkpoint, each a batch job. What ran on the cluster is as cached for a local run:
 * the executor is not part of any fingerprint.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { beforeAll, expect, it } from "vitest"
import { cli, runJson, tempWorkspace } from "../../support/cli.ts"
import { describeSlurm, pipelineModule, requireCluster, slurm, slurmJobs } from "./cluster.ts"

describeSlurm("scaling-suite --preset tiny, a slice, on Slurm", () => {
  beforeAll(requireCluster)

  it("trains, evaluates and traces through batch jobs; a local plan then finds everything fresh", async () => {
    const ws = tempWorkspace("fp-slurm-suite-")
    // The test cluster's GPUs are placeholders: stages settle on the CPU backend.
    const args = [pipelineModule("suite-slice"), "--workspace", ws, ...slurm, "--config", "slurm.gpusPerNode=0"]
    const { result, summary } = await runJson(args)
    expect(result.exitCode, result.stderr.slice(-3000)).toBe(0)
    expect(summary?.failed).toBe(0)
    expect(summary?.executed).toBe(summary?.stages.length)

    const jobs = slurmJobs(ws)
    expect(jobs).toHaveLength(summary!.executed)
    expect(jobs.every((j) => j.state === "COMPLETED" && j.executionStatus === "succeeded")).toBe(true)
    // The sources are ready at once, and of one kind: one job array.
    const sources = jobs.filter((j) => j.stage.startsWith("source/"))
    expect(sources.length).toBeGreaterThan(4)
    expect(new Set(sources.map((j) => j.jobId.split("_")[0])).size).toBe(1)
    const train = jobs.find((j) => j.stage.startsWith("train/"))!
    expect(fs.readFileSync(path.join(ws, train.script), "utf8")).toContain("#SBATCH --cpus-per-task=2")
    const evalJob = jobs.find((j) => j.stage.startsWith("eval/") && j.stage !== "eval/requests")!
    const shown = await cli(["show", evalJob.stage, "--workspace", ws, "--json"])
    const execution = JSON.parse(shown.stdout) as {
      outputs: Array<{ name: string }>
      execution: { result: { tasks?: unknown } | null; executor: string }
    }
    expect(execution.execution.executor).toBe("slurm")
    expect(execution.outputs.map((o) => o.name)).toContain("eval.json")

    const plan = await cli(["plan", pipelineModule("suite-slice"), "--workspace", ws, "--gpus", "none", "--json"])
    const entries = (JSON.parse(plan.stdout) as { stages: Array<{ status: string }> }).stages
    expect(entries.every((e) => e.status === "fresh")).toBe(true)
    const again = await runJson(args)
    expect(again.summary?.executed).toBe(0)
    expect(slurmJobs(ws)).toHaveLength(jobs.length)
  })
})
