/**
 * `audit --executor slurm` on the toy pipeline through a real Slurm cluster: the selected executions
 * are re-executed as batch jobs in the re-execution mode of the job spec (with the params they
 * recorded, even where the pipeline resolves to others now), the jobs' files and records kept in the
 * scratch workspace, and their outputs compared bit for bit with what the run recorded.
 */
import { execa } from "execa"
import * as fs from "node:fs"
import * as path from "node:path"
import { beforeAll, expect, it } from "vitest"
import type { AuditReport } from "../../../src/domain/Audit.ts"
import { bin, cli, root, runJson, tempWorkspace } from "../../support/cli.ts"
import { describeSlurm, pipelineModule, requireCluster, slurm, slurmJobs } from "./cluster.ts"

describeSlurm("audit on Slurm", () => {
  beforeAll(requireCluster)

  it("re-executes the selected stages as Slurm jobs in the scratch workspace and compares them bit for bit", async () => {
    const ws = tempWorkspace("fp-slurm-audit-")
    // Run here; re-executed on the cluster.
    const first = await runJson(["toy", "--workspace", ws])
    expect(first.result.exitCode, first.result.stderr.slice(-3000)).toBe(0)

    const scratch = path.join(ws, "audit-scratch")
    const audited = await cli([
      "audit",
      "toy",
      "--workspace",
      ws,
      ...slurm,
      "--stages",
      "sum,square/1",
      "--scratch",
      scratch,
      "--keep-scratch",
      "--json"
    ])
    expect(audited.exitCode, audited.stderr.slice(-3000)).toBe(0)
    const report = JSON.parse(audited.stdout) as AuditReport
    expect(report.status).toBe("passed")
    const results = report.reexecution.results
    expect(results.map((r) => r.stage).sort()).toEqual(["square/1", "sum"])
    for (const result of results) {
      expect(result, JSON.stringify(result)).toMatchObject({ status: "reproduced", reproducibility: "bitwise" })
      expect(result.outputs.length).toBeGreaterThan(0)
      expect(result.outputs.every((o) => o.equal && o.rebuiltHash === o.recordedHash)).toBe(true)
    }

    // Each ran as a Slurm job, which the scratch workspace's lineage records against its re-execution.
    const jobs = slurmJobs(scratch)
    expect(jobs.map((j) => j.stage).sort()).toEqual(["square/1", "sum"])
    for (const job of jobs) {
      expect(job).toMatchObject({ executor: "slurm", executionStatus: "succeeded", state: "COMPLETED", exitCode: 0 })
      expect(job.nodeList).toBeTruthy()
      // The job's spec, beside its script in the scratch workspace, asked for the recorded params.
      const spec = JSON.parse(fs.readFileSync(path.join(scratch, path.dirname(job.script), "task-0.json"), "utf8"))
      expect(spec).toMatchObject({ mode: "reexecute", stageId: job.stage })
      expect(spec.workDir.startsWith(`${scratch}${path.sep}`)).toBe(true)
    }
    const sumLog = fs.readdirSync(path.join(scratch, "logs", "sum"))
    expect(fs.readFileSync(path.join(scratch, "logs", "sum", sumLog[0]!), "utf8")).toContain(
      "[job] re-executing with the params the execution recorded"
    )

    // The audited workspace got neither job files nor job records.
    expect(fs.existsSync(path.join(ws, "slurm"))).toBe(false)
    expect(slurmJobs(ws)).toEqual([])
  })

  it("re-executes with the params an execution recorded, which the pipeline no longer resolves to", async () => {
    const ws = tempWorkspace("fp-slurm-audit-drift-")
    const pipeline = pipelineModule("toy-drift")
    // The run recorded generate drawing 50 numbers; the code now draws the toy's 100.
    const first = await execa(process.execPath, [bin, "run", pipeline, "--workspace", ws], {
      cwd: root,
      reject: false,
      env: { FLAME_TOY_COUNT: "50", FORCE_COLOR: "0", NO_COLOR: "1" }
    })
    expect(first.exitCode, first.stderr.slice(-3000)).toBe(0)

    const scratch = path.join(ws, "audit-scratch")
    // From the sources: the command names a stage, and the recorded run's pipeline is a module to load.
    const audited = await execa(process.execPath, [
      bin,
      "audit",
      "generate",
      "--workspace",
      ws,
      ...slurm,
      "--stages",
      "generate",
      "--scratch",
      scratch,
      "--keep-scratch",
      "--json"
    ], { cwd: root, reject: false, env: { FLAME_PIPE_FROM_SOURCES: "1", FORCE_COLOR: "0", NO_COLOR: "1" } })
    expect(audited.exitCode, audited.stderr.slice(-3000)).toBe(0)
    const report = JSON.parse(audited.stdout) as AuditReport
    expect(report.reexecution.results).toHaveLength(1)
    expect(report.reexecution.results[0]).toMatchObject({
      stage: "generate",
      status: "reproduced",
      reproducibility: "bitwise"
    })
    expect(slurmJobs(scratch)).toMatchObject([{ stage: "generate", state: "COMPLETED", exitCode: 0 }])
    // The job resolved the pipeline to 100 numbers and ran the recorded 50.
    const logs = path.join(scratch, "logs", "generate")
    expect(fs.readFileSync(path.join(logs, fs.readdirSync(logs)[0]!), "utf8")).toContain(
      "[job] re-executing with the params the execution recorded (the pipeline resolves to others here)"
    )
  })

  it("refuses bad Slurm settings as run does, naming the setting, before re-executing anything", async () => {
    const ws = tempWorkspace("fp-slurm-audit-refused-")
    const first = await runJson(["toy", "--workspace", ws])
    expect(first.result.exitCode, first.result.stderr.slice(-3000)).toBe(0)
    const refused = await cli([
      "audit",
      "toy",
      "--workspace",
      ws,
      ...slurm,
      "--config",
      "slurm.partition=ci\n#SBATCH --wrap=true",
      "--stages",
      "sum"
    ])
    expect(refused.exitCode).toBe(1)
    expect(refused.stderr).toContain("Slurm settings: --config slurm.partition: contains a newline")
    expect(refused.stderr).not.toMatch(/\n\s+at /)
    expect(fs.existsSync(path.join(ws, ".audit"))).toBe(false)
  })
})
