/**
 * The toy pipeline through a real Slurm cluster (one node, accounting disabled): every stage a batch
 * job, fan-out as a job array, lineage recording the jobs; a failing job, a run interrupted with
 * Ctrl-C (its jobs cancelled), and a job cancelled by someone else.
 */
import Database from "better-sqlite3"
import { execa } from "execa"
import * as fs from "node:fs"
import * as path from "node:path"
import { beforeAll, expect, it } from "vitest"
import { bin, cli, root, runJson, tempWorkspace } from "../../support/cli.ts"
import { describeSlurm, queueStates, requireCluster, slurm, slurmJobs, slurmJobsSoFar, waitFor } from "./cluster.ts"

const runRow = (ws: string) => {
  const db = new Database(path.join(ws, "lineage.sqlite"), { readonly: true })
  try {
    return db.prepare("select status, executor from runs order by started_at desc limit 1").get() as {
      status: string
      executor: string
    }
  } finally {
    db.close()
  }
}

describeSlurm("toy pipeline on Slurm", () => {
  beforeAll(requireCluster)

  it("runs every stage as a batch job, the fan-out as one array, and caches as the local executor does", async () => {
    const ws = tempWorkspace("fp-slurm-toy-")
    const first = await runJson(["toy", "--workspace", ws, ...slurm])
    expect(first.result.exitCode, first.result.stderr.slice(-3000)).toBe(0)
    expect(first.summary?.executed).toBe(7)
    expect(runRow(ws)).toEqual({ status: "succeeded", executor: "slurm" })

    const jobs = slurmJobs(ws)
    expect(jobs.map((j) => j.stage).sort()).toEqual(
      ["filter", "generate", "report", "square/0", "square/1", "square/2", "sum"]
    )
    for (const job of jobs) {
      expect(job).toMatchObject({ executor: "slurm", executionStatus: "succeeded", state: "COMPLETED", exitCode: 0 })
      expect(job.nodeList).toBeTruthy()
    }
    // The three squares became ready together: tasks 0-2 of one array job.
    const squares = jobs.filter((j) => j.stage.startsWith("square/"))
    const arrayId = squares[0]!.jobId.split("_")[0]
    expect(squares.map((j) => j.jobId).sort()).toEqual([0, 1, 2].map((i) => `${arrayId}_${i}`))
    const script = fs.readFileSync(path.join(ws, squares[0]!.script), "utf8")
    expect(script).toContain("#SBATCH --array=0-2")
    expect(script).toContain("#SBATCH --cpus-per-task=1")
    expect(script).toContain("#SBATCH --mem=512M")

    // The worker's metrics came back through the events file.
    const db = new Database(path.join(ws, "lineage.sqlite"), { readonly: true })
    const metrics = db.prepare(
      "select count(*) as n from metrics m join executions e on e.id = m.execution_id where e.stage_id = 'sum'"
    ).get() as { n: number }
    db.close()
    expect(metrics.n).toBe(98)

    const shown = await cli(["show", "sum", "--workspace", ws])
    expect(shown.stdout).toMatch(/slurm jobs\n\s+\d+ COMPLETED on \S+ exit 0/)

    // Cached stages never reach the executor: nothing is submitted the second time.
    const second = await runJson(["toy", "--workspace", ws, ...slurm])
    expect(second.summary?.cached).toBe(7)
    expect(slurmJobs(ws)).toHaveLength(7)
    // The same outputs as the local executor.
    const local = tempWorkspace("fp-slurm-toy-local-")
    await runJson(["toy", "--workspace", local])
    const total = (w: string) => {
      const dir = path.join(w, "artifacts", "sum")
      const fp = fs.readdirSync(dir)[0]!
      return fs.readFileSync(path.join(dir, fp, "total.json"), "utf8")
    }
    expect(total(ws)).toBe(total(local))
  })

  it("extra sbatch flags reach sbatch word for word; a newline in a setting is refused before anything is submitted", async () => {
    const ws = tempWorkspace("fp-slurm-flags-")
    const comment = "a b; $(touch pwned) #c"
    const { result, summary } = await runJson([
      "toy",
      "--workspace",
      ws,
      ...slurm,
      "--config",
      `slurm.stage.generate.sbatch=--comment='${comment}'`
    ])
    expect(result.exitCode, result.stderr.slice(-3000)).toBe(0)
    expect(summary?.status).toBe("succeeded")
    const generate = slurmJobs(ws).find((j) => j.stage === "generate")!
    const shown = await execa("scontrol", ["show", "job", generate.jobId])
    expect(String(shown.stdout)).toContain(`Comment=${comment}`)
    expect(fs.readFileSync(path.join(ws, generate.script), "utf8")).not.toContain("--comment")

    const refused = await cli([
      "run",
      "toy",
      "--workspace",
      tempWorkspace("fp-slurm-newline-"),
      ...slurm,
      "--config",
      "slurm.partition=ci\n#SBATCH --wrap=true"
    ])
    expect(refused.exitCode).toBe(1)
    expect(refused.stderr).toContain("Slurm settings: --config slurm.partition: contains a newline")
    expect(refused.stderr).not.toMatch(/\n\s+at /)
  })

  it("a failing job: the stage fails with the worker's exit code and its log tail, the job is recorded FAILED", async () => {
    const ws = tempWorkspace("fp-slurm-fail-")
    const { result, summary } = await runJson(["toy", "--workspace", ws, ...slurm, "--set", "sum.failAt=5"])
    expect(result.exitCode).toBe(1)
    expect(summary?.failed).toBe(1)
    expect(summary?.stages.find((s) => s.stage === "sum")?.error).toContain("worker failed (exit code 3)")
    expect(result.stderr).toContain("failing on purpose at step 5")
    const sum = slurmJobs(ws).find((j) => j.stage === "sum")!
    expect(sum).toMatchObject({ executionStatus: "failed", state: "FAILED", exitCode: 1 })
    const shown = await cli(["show", "sum", "--workspace", ws])
    expect(shown.stdout).toContain("status      failed (exit 3)")
  })

  it("Ctrl-C cancels the submitted jobs with scancel and records them interrupted", async () => {
    const ws = tempWorkspace("fp-slurm-cancel-")
    const child = execa(
      process.execPath,
      [bin, "run", "toy", "--workspace", ws, ...slurm, "--set", "sum.sleepMs=300"],
      {
        cwd: root,
        reject: false
      }
    )
    const sum = await waitFor(async () => {
      const job = slurmJobsSoFar(ws).find((j) => j.stage === "sum")
      return job && (await queueStates()).get(job.jobId) === "RUNNING" ? job : undefined
    }, "the sum job to run")
    child.kill("SIGINT")
    const ended = await child
    const job = slurmJobs(ws).find((j) => j.jobId === sum.jobId)!
    expect(job, `exit ${ended.exitCode} ${ended.signal}: ${String(ended.all ?? ended.stderr).slice(-2000)}`)
      .toMatchObject({
        executionStatus: "interrupted",
        state: "CANCELLED"
      })
    expect(runRow(ws).status).toBe("interrupted")
    expect((await queueStates()).get(sum.jobId)).toBe("CANCELLED")
    // Its staging directory is gone with it, and a new run redoes only what did not finish.
    const rerun = await runJson(["toy", "--workspace", ws, ...slurm])
    expect(rerun.summary?.status).toBe("succeeded")
    expect(rerun.summary?.executed).toBe(2)
  })

  it("a job cancelled by someone else fails its stage, naming the job and its state", async () => {
    const ws = tempWorkspace("fp-slurm-scancel-")
    const child = execa(
      process.execPath,
      [bin, "run", "toy", "--workspace", ws, ...slurm, "--set", "sum.sleepMs=300", "--json"],
      { cwd: root, reject: false }
    )
    const sum = await waitFor(async () => {
      const job = slurmJobsSoFar(ws).find((j) => j.stage === "sum")
      return job && (await queueStates()).get(job.jobId) === "RUNNING" ? job : undefined
    }, "the sum job to run")
    await execa("scancel", [sum.jobId])
    const result = await child
    expect(result.exitCode).toBe(1)
    const summary = JSON.parse(String(result.stdout)) as { stages: Array<{ stage: string; error: string | null }> }
    expect(summary.stages.find((s) => s.stage === "sum")?.error).toContain(`Slurm job ${sum.jobId} ended CANCELLED`)
    expect(slurmJobs(ws).find((j) => j.jobId === sum.jobId)).toMatchObject({
      executionStatus: "failed",
      state: "CANCELLED"
    })
  })

  it("jobs left by a killed run are cancelled by the next run, which then redoes their stages", async () => {
    const ws = tempWorkspace("fp-slurm-killed-")
    const args = ["run", "toy", "--workspace", ws, ...slurm, "--set", "sum.sleepMs=300"]
    const child = execa(process.execPath, [bin, ...args], { cwd: root, reject: false })
    const sum = await waitFor(async () => {
      const job = slurmJobsSoFar(ws).find((j) => j.stage === "sum")
      return job && (await queueStates()).get(job.jobId) === "RUNNING" ? job : undefined
    }, "the sum job to run")
    child.kill("SIGKILL")
    await child
    expect((await queueStates()).get(sum.jobId)).toBe("RUNNING")
    const rerun = await runJson(["toy", "--workspace", ws, ...slurm, "--set", "sum.sleepMs=0"])
    expect(rerun.result.stderr).toContain("slurm: cancelled 1 job(s) left behind by a run that was killed")
    expect(rerun.summary?.status).toBe("succeeded")
    expect(slurmJobs(ws).find((j) => j.jobId === sum.jobId)).toMatchObject({
      state: "CANCELLED",
      executionStatus: "interrupted"
    })
    await waitFor(async () => (await queueStates()).get(sum.jobId) === "CANCELLED", "the orphaned job to end")
  })
})
