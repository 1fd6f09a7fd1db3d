/**
 * The Megatron backend end to end through Slurm, with the test doubles standing in for torchrun and
 * pretrain_gpt.py: the generated command line reaches them intact through srun and torchrun (two
 * ranks on the node's two placeholder GPUs), their checkpoints become lineage artifacts, their log
 * lines become metrics; a job requeued between checkpoints resumes from the latest one without
 * counting as a failure or being submitted again; a job Slurm cannot place fails at submission; and
 * the tiny suite's evaluation and trace, as batch jobs, import the torch_dist checkpoints it saved.
 */
import Database from "better-sqlite3"
import { execa } from "execa"
import * as fs from "node:fs"
import * as path from "node:path"
import { beforeAll, expect, it } from "vitest"
import { bin, root, runJson, tempWorkspace } from "../../support/cli.ts"
import {
  describeSlurm,
  pipelineModule,
  queueStates,
  requireCluster,
  slurm,
  slurmJobs,
  slurmJobsSoFar,
  waitFor
} from "./cluster.ts"
import { expectSuiteOnMegatron, expectTorchDist, onMegatronDoubles, SCALE } from "./megatronSuite.ts"

const pipeline = pipelineModule("megatron")

const query = <A>(ws: string, sql: string, ...params: Array<unknown>): Array<A> => {
  const db = new Database(path.join(ws, "lineage.sqlite"), { readonly: true })
  try {
    return db.prepare(sql).all(...params) as Array<A>
  } finally {
    db.close()
  }
}

const trainResult = (ws: string) =>
  JSON.parse(
    query<{ result: string }>(
      ws,
      "select result from executions where stage_id = 'train/tiny' and status = 'succeeded' order by started_at desc limit 1"
    )[0]!.result
  ) as { startIteration: number; reusedCheckpoints: Array<string>; finalLoss: number; iterations: number }

const trainLog = (ws: string) => {
  const dir = path.join(ws, "logs", "train", "tiny")
  return fs.readdirSync(dir).map((f) => fs.readFileSync(path.join(dir, f), "utf8")).join("\n")
}

describeSlurm("Megatron backend on Slurm (test doubles for torchrun and pretrain_gpt.py)", () => {
  beforeAll(requireCluster)
  const ws = tempWorkspace("fp-slurm-megatron-")

  it("trains through srun and torchrun, records Megatron's checkpoints as artifacts and its log as metrics", async () => {
    const { result, summary } = await runJson([pipeline, "--workspace", ws, ...slurm])
    expect(result.exitCode, result.stderr.slice(-3000)).toBe(0)
    expect(summary?.status).toBe("succeeded")

    const artifacts = query<{ name: string; path: string }>(
      ws,
      `select a.name, a.path from artifacts a join executions e on e.id = a.execution_id
       where e.stage_id = 'train/tiny' order by a.name`
    )
    expect(artifacts.map((a) => a.name)).toEqual(["iter_0000010", "iter_0000020", "iter_0000030"])
    // Megatron's torch_dist layout, with blobs from both ranks.
    for (const a of artifacts) expectTorchDist(path.join(ws, a.path))

    const job = slurmJobs(ws).find((j) => j.stage === "train/tiny")!
    expect(job).toMatchObject({ state: "COMPLETED", exitCode: 0, restarts: 0 })
    const script = fs.readFileSync(path.join(ws, job.script), "utf8")
    expect(script).toContain("#SBATCH --gres=gpu:2")
    expect(script).toContain("#SBATCH --nodes=1")

    const log = trainLog(ws)
    expect(log).toMatch(
      /\$ \(cd \S+test\/doubles\) srun --nodes=1 --ntasks-per-node=1 .*fake-torchrun\.mjs --nnodes 1 --node_rank @NODE_RANK@ --nproc_per_node 2 --rdzv-id \d+ --rdzv-backend c10d --rdzv-endpoint \S+:\d+ /
    )
    // What pretrain_gpt.py received (it prints its arguments as Megatron does), after srun, the node-rank
    // shim and torchrun: the generated values, words intact.
    const received = new Map([...log.matchAll(/^ {2}(\w+) \.{3,} (.*)$/gm)].map((m) => [m[1]!, m[2]!]))
    expect(received.get("moe_layer_freq")).toBe("[0]*1+[1]*2")
    expect(received.get("expert_model_parallel_size")).toBe("2")
    expect(received.get("moe_shared_expert_intermediate_size")).toBe("32")
    expect(received.get("lr_wsd_decay_iters")).toBe("3")
    expect(received.get("save")).toBe(received.get("load"))
    expect(received.get("data_path")).toMatch(/artifacts\/tokenize\/merge\/\w+\/dataset\/\w+_text_document/)
    expect(log).toMatch(/world size 2, master \S+:\d+/)

    const losses = query<{ step: number; value: number }>(
      ws,
      `select m.step, m.value from metrics m join executions e on e.id = m.execution_id
       where e.stage_id = 'train/tiny' and m.name = 'loss' order by m.step`
    )
    expect(losses.map((l) => l.step)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1))
    expect(losses[29]!.value).toBeLessThan(losses[0]!.value)
    const validation = query<{ step: number }>(
      ws,
      `select m.step from metrics m join executions e on e.id = m.execution_id
       where e.stage_id = 'train/tiny' and m.name = 'val_loss' order by m.step`
    )
    expect(validation.map((v) => v.step)).toEqual([10, 20, 30])
    expect(trainResult(ws)).toMatchObject({ startIteration: 0, iterations: 30, reusedCheckpoints: [] })
    expect(trainResult(ws).finalLoss).toBeCloseTo(losses[29]!.value, 6)
  })

  it("a job requeued between checkpoints resumes from the latest one: one job, one execution, no failure", async () => {
    const child = execa(process.execPath, [
      bin,
      "run",
      pipeline,
      "--preset",
      "slow",
      "--workspace",
      ws,
      ...slurm,
      "--json"
    ], {
      cwd: root,
      reject: false
    })
    const job = await waitFor(
      () => slurmJobsSoFar(ws).find((j) => j.stage === "train/tiny" && j.state === "RUNNING"),
      "the train job to run"
    )
    const staging = path.join(ws, "staging", "train", "tiny")
    await waitFor(() => {
      const fp = fs.existsSync(staging) ? fs.readdirSync(staging)[0] : undefined
      const tracker = fp && path.join(staging, fp, "latest_checkpointed_iteration.txt")
      return tracker && fs.existsSync(tracker) && Number(fs.readFileSync(tracker, "utf8")) >= 10
    }, "the first checkpoint")
    await execa("scontrol", ["requeue", job.jobId])
    // Slurm holds a requeued job back for a couple of minutes, so that the killed attempt is gone from
    // its node before it starts again; the test releases it once that attempt's job process has ended.
    await waitFor(async () => (await queueStates()).get(job.jobId) === "PENDING", "the job to be pending again")
    const events = fs.readFileSync(path.join(ws, path.dirname(job.script), "task-0.events.jsonl"), "utf8")
    const { pid } = JSON.parse(events.split("\n")[0]!) as { pid: number }
    const alive = () => {
      try {
        process.kill(pid, 0)
        return true
      } catch {
        return false
      }
    }
    await waitFor(() => !alive(), "the killed attempt's job process to end")
    // A moment for slurmd to finish with the killed attempt; an update schedules the job at once.
    await new Promise((resolve) => setTimeout(resolve, 1000))
    await execa("scontrol", ["update", `JobId=${job.jobId}`, "StartTime=now"])
    const result = await child
    expect(result.exitCode, String(result.stderr).slice(-3000)).toBe(0)
    const summary = JSON.parse(String(result.stdout)) as { status: string; failed: number }
    expect(summary).toMatchObject({ status: "succeeded", failed: 0 })
    expect(String(result.stderr)).toContain(
      `Slurm job ${job.jobId} was requeued (restart 1); it resumes from its latest checkpoint`
    )

    const jobs = slurmJobs(ws).filter((j) => j.stage === "train/tiny" && j.jobId === job.jobId)
    expect(jobs).toHaveLength(1)
    expect(jobs[0]).toMatchObject({ state: "COMPLETED", restarts: 1, submission: 1, executionStatus: "succeeded" })
    const executions = query<{ status: string }>(
      ws,
      "select status from executions where stage_id = 'train/tiny' and run_id = (select id from runs order by started_at desc limit 1)"
    )
    expect(executions).toEqual([{ status: "succeeded" }])
    const trained = trainResult(ws)
    expect(trained.startIteration).toBeGreaterThanOrEqual(10)
    expect(trained.reusedCheckpoints).toContain("iter_0000010")
    expect(trainLog(ws)).toMatch(
      new RegExp(`successfully loaded checkpoint from \\S+ \\[ t 1/1, p 1/1 \\] at iteration ${trained.startIteration}`)
    )
  })

  it("a job that hits its time limit is submitted again as the same execution, resuming from its newest checkpoint", async () => {
    // One-minute limit, 3 s iterations: no job trains all 30; each one gets further than the last.
    const { result, summary } = await runJson([pipeline, "--preset", "timeout", "--workspace", ws, ...slurm])
    expect(result.exitCode, result.stderr.slice(-3000)).toBe(0)
    expect(summary?.status).toBe("succeeded")
    expect(result.stderr).toMatch(
      /train\/tiny: job \d+ hit its time limit \(00:01:00\); resubmitting \(1 of 3\), resuming from iter_00000[12]0/
    )
    const run = query<{ id: string }>(ws, "select id from runs order by started_at desc limit 1")[0]!.id
    const executions = query<{ id: string; status: string }>(
      ws,
      "select id, status from executions where stage_id = 'train/tiny' and run_id = ?",
      run
    )
    expect(executions.map((e) => e.status)).toEqual(["succeeded"])
    const jobs = query<{ submission: number; state: string }>(
      ws,
      "select submission, state from slurm_jobs where execution_id = ? order by submission",
      executions[0]!.id
    )
    expect(jobs.length).toBeGreaterThanOrEqual(2)
    expect(jobs.slice(0, -1).every((j) => j.state === "TIMEOUT")).toBe(true)
    expect(jobs.at(-1)).toMatchObject({ submission: jobs.length, state: "COMPLETED" })
    const trained = trainResult(ws)
    expect(trained.startIteration).toBeGreaterThanOrEqual(10)
    expect(trained.reusedCheckpoints).toContain("iter_0000010")
    // Steps replayed by a resubmission are recorded once each.
    const steps = query<{ step: number }>(
      ws,
      "select step from metrics where execution_id = ? and name = 'loss' order by step",
      executions[0]!.id
    )
    expect(steps.map((s) => s.step)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1))
  })

  it("a two-node job: srun starts one torchrun per node, their ranks meet on the job's first node", async () => {
    // Partition `pair` holds the test node and a second slurmd on the same machine (scripts/ci/slurm-cluster.sh).
    const { result, summary } = await runJson([
      pipeline,
      "--workspace",
      ws,
      ...slurm,
      "--config",
      "slurm.stage.train/*.partition=pair",
      "--set",
      "train/tiny.megatron.nodes=2",
      "--set",
      "train/tiny.megatron.gpusPerNode=1"
    ])
    expect(result.exitCode, result.stderr.slice(-3000)).toBe(0)
    expect(summary?.executed).toBe(1)
    const job = slurmJobs(ws).filter((j) => j.stage === "train/tiny").pop()!
    expect(job.state).toBe("COMPLETED")
    expect(job.nodeList?.split(",")).toHaveLength(2)
    const script = fs.readFileSync(path.join(ws, job.script), "utf8")
    for (const directive of ["--partition=pair", "--nodes=2", "--ntasks-per-node=1", "--gres=gpu:1", "--mem=1024M"]) {
      expect(script).toContain(`#SBATCH ${directive}`)
    }
    const log = fs.readFileSync(
      path.join(
        ws,
        "logs",
        "train",
        "tiny",
        fs.readdirSync(path.join(ws, "logs", "train", "tiny")).find(
          (f) => fs.readFileSync(path.join(ws, "logs", "train", "tiny", f), "utf8").includes("--nodes=2")
        )!
      ),
      "utf8"
    )
    // The doubles check --nnodes, --node_rank and the rendezvous host against each node's SLURM_* variables.
    const first = job.nodeList!.split(",")[0]!
    expect(log).toMatch(new RegExp(`--rdzv-endpoint ${first}:\\d+`))
    expect(log).toContain(`world size 2, master ${first}:`)
    const final = path.join(ws, "artifacts", "train", "tiny")
    const fp = fs.readdirSync(final).find((d) => fs.existsSync(path.join(final, d, "iter_0000030", "__1_0.distcp")))
    expect(fp).toBeDefined()
    expectTorchDist(path.join(final, fp!, "iter_0000030"))
  })

  it("a job Slurm cannot place fails at submission with sbatch's reason", async () => {
    const { result, summary } = await runJson([
      pipeline,
      "--workspace",
      ws,
      ...slurm,
      "--set",
      "train/tiny.megatron.gpusPerNode=4"
    ])
    expect(result.exitCode).toBe(1)
    const error = summary?.stages.find((s) => s.stage === "train/tiny")?.error ?? ""
    expect(error).toContain("sbatch refused the job")
    expect(error).toMatch(/Requested node configuration is not available|Invalid generic resource/)
  })

  it("the suite closes on it: a Megatron training job, then eval and trace jobs that import its checkpoint", async () => {
    const suiteWs = tempWorkspace("fp-slurm-megatron-suite-")
    const { result, summary } = await runJson([
      pipelineModule("suite-megatron"),
      "--preset",
      "slice",
      "--workspace",
      suiteWs,
      ...slurm,
      ...onMegatronDoubles()
    ])
    expect(result.exitCode, result.stderr.slice(-3000)).toBe(0)
    expect(summary?.status).toBe("succeeded")
    expect(summary?.executed).toBe(summary?.stages.length)
    const jobs = slurmJobs(suiteWs)
    expect(jobs.every((j) => j.state === "COMPLETED" && j.executionStatus === "succeeded")).toBe(true)
    const train = jobs.find((j) => j.stage === `train/${SCALE}`)!
    expect(fs.readFileSync(path.join(suiteWs, train.script), "utf8")).toContain("#SBATCH --gres=gpu:2")
    const steps = jobs.filter((j) => j.stage.startsWith(`eval/${SCALE}/`)).map((j) => Number(j.stage.split("/").pop()))
    expect(steps).toHaveLength(1)
    expect(jobs.map((j) => j.stage)).toContain(`trace/${SCALE}/${steps[0]}`)
    expectSuiteOnMegatron(suiteWs, steps)
  })
})
