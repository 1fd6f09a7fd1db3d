/**
 * Previewing a run through the CLI from a machine that cannot run it (a laptop, a login node): `dag`
 * needs no GPUs, `plan` and `dag` preview the Slurm executor without a cluster when the GPUs per node
 * are given, and `plan` prints the launch command of a Megatron stage, which `show` reads back from
 * the log of the execution that launched it.
 */
import { execa } from "execa"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { bin, root, tempWorkspace } from "../../support/cli.ts"

const data = [
  "--config",
  `corpus=${path.join(root, "fixtures", "corpus")}`,
  "--config",
  `tokenizer=${path.join(root, "fixtures", "tokenizer", "tokenizer.json")}`,
  "--config",
  `tasks=${path.join(root, "fixtures", "eval")}`
]
const scales = ["38m", "98m", "115m", "290m", "419m", "721m", "1.7b"].map((s) => `flame-moe-${s}`)

/** A PATH whose `sinfo` fails as on a machine without Slurm: no cluster here. */
const noCluster = (() => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fp-no-slurm-"))
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))
  fs.writeFileSync(
    path.join(dir, "sinfo"),
    "#!/bin/sh\necho 'sinfo: command not found' >&2\nexit 127\n",
    { mode: 0o755 }
  )
  return `${dir}${path.delimiter}${process.env.PATH ?? ""}`
})()

const flamePipe = (args: ReadonlyArray<string>) =>
  execa(process.execPath, [bin, ...args], {
    cwd: root,
    reject: false,
    timeout: 120_000,
    env: { FORCE_COLOR: "0", NO_COLOR: "1", PATH: noCluster }
  })

/** FLAME-MoE's exports before torchrun (scripts/training/modules/flame-moe_step2.sh) and Megatron's CUDA setting. */
const flameMoeEnv = {
  CUDA_DEVICE_MAX_CONNECTIONS: "1",
  OMP_NUM_THREADS: "16",
  TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD: "true",
  TORCH_NCCL_TRACE_BUFFER_SIZE: "8",
  TORCH_NCCL_DUMP_ON_TIMEOUT: "1"
}

describe("previewing without GPUs or a cluster", () => {
  it("dag prints the full preset on a machine without GPUs, and says what a run here would do", async () => {
    const cpu = await flamePipe(["dag", "scaling-suite", "--preset", "full", "--gpus", "none", ...data])
    expect(cpu.exitCode, cpu.stderr).toBe(0)
    for (const scale of scales) expect(cpu.stdout).toContain(`"train/${scale}"`)
    expect(cpu.stdout).toContain("flame-worker as worker")
    expect(cpu.stderr).toContain("settled for an executor without GPUs")
    expect(cpu.stderr).toContain("--gpus 0")
    expect(cpu.stderr).not.toContain("none detected")

    const gpu = await flamePipe(["dag", "scaling-suite", "--preset", "full", "--gpus", "0", ...data])
    expect(gpu.exitCode, gpu.stderr).toBe(0)
    expect(gpu.stdout).toContain("flame-worker-cuda as worker")
    expect(gpu.stderr).toBe("")
    // The same stages either way.
    const ids = (out: string) => out.split("\n").filter((l) => /^ {2}s\d+\[/.test(l)).sort()
    expect(ids(gpu.stdout)).toEqual(ids(cpu.stdout))
  })

  it("dag previews the Slurm executor without a cluster when slurm.gpusPerNode is given, and says so when it is not", async () => {
    const slurm = await flamePipe([
      "dag",
      "scaling-suite",
      "--preset",
      "full",
      "--format",
      "dot",
      "--executor",
      "slurm",
      "--config",
      "slurm.gpusPerNode=8",
      ...data
    ])
    expect(slurm.exitCode, slurm.stderr).toBe(0)
    expect(slurm.stdout).toContain(`"compile-kernels" -> "train/flame-moe-1.7b" [label="flame-worker-cuda as worker"]`)
    expect(slurm.stderr).toBe("")

    const auto = await flamePipe(["dag", "scaling-suite", "--preset", "full", "--executor", "slurm", ...data])
    expect(auto.exitCode).toBe(1)
    expect(auto.stderr).toContain("--executor slurm needs a reachable Slurm cluster")
    expect(auto.stderr).toContain("--config slurm.gpusPerNode=N to preview without one")
  })

  it("dag still needs the data paths, and says why, without asking for GPUs", async () => {
    const missing = await flamePipe(["dag", "scaling-suite", "--preset", "full", "--gpus", "none"])
    expect(missing.exitCode).toBe(1)
    expect(missing.stderr).toContain("the DCLM corpus: --config corpus=")
    expect(missing.stderr).toContain("pythia-12b's tokenizer: --config tokenizer=")
    expect(missing.stderr).toContain("one tokenize stage per corpus shard")
    expect(missing.stderr).not.toContain("GPUs:")
  })

  it("plan previews a Megatron suite on Slurm from a machine without a cluster: each stage's launch", async () => {
    const ws = tempWorkspace("fp-plan-preview-")
    const args = [
      "plan",
      "scaling-suite",
      "--preset",
      "full",
      "--workspace",
      ws,
      "--executor",
      "slurm",
      "--config",
      "slurm.gpusPerNode=8",
      "--set",
      "train/*.backend=megatron",
      "--set",
      "train/*.megatron.path=/opt/Megatron-LM",
      "--set",
      "train/flame-moe-290m.megatron.wandbProject=flame-moe",
      ...data
    ]
    const text = await flamePipe(args)
    expect(text.exitCode, text.stderr).toBe(0)
    const lines = text.stdout.split("\n")
    for (const scale of scales) {
      const at = lines.findIndex((l) => l.startsWith(`STALE  train/${scale}:`))
      expect(at, scale).toBeGreaterThanOrEqual(0)
      expect(lines[at + 1]!.trim()).toBe(
        "$ export CUDA_DEVICE_MAX_CONNECTIONS=1 OMP_NUM_THREADS=16 TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=true " +
          "TORCH_NCCL_TRACE_BUFFER_SIZE=8 TORCH_NCCL_DUMP_ON_TIMEOUT=1"
      )
      expect(lines[at + 2]!.trim()).toMatch(
        /^\$ \(cd \/opt\/Megatron-LM\) srun --nodes=4 --ntasks-per-node=1 .* torchrun --nnodes 4 --node_rank @NODE_RANK@ --nproc_per_node 8 --rdzv-id <job id> --rdzv-backend c10d --rdzv-endpoint <first node>:<20000 \+ job id % 20000> \/opt\/Megatron-LM\/pretrain_gpt\.py --hidden-size /
      )
    }

    const json = await flamePipe([...args, "--json"])
    expect(json.exitCode, json.stderr).toBe(0)
    const stages = (JSON.parse(json.stdout) as {
      stages: ReadonlyArray<{ stage: string; launch?: { env: unknown; command: ReadonlyArray<string> } }>
    }).stages
    expect(stages.filter((s) => s.launch !== undefined).map((s) => s.stage).sort()).toEqual(
      scales.map((s) => `train/${s}`).sort()
    )
    const launch = stages.find((s) => s.stage === "train/flame-moe-290m")!.launch!
    expect(launch.env).toEqual(flameMoeEnv)
    const after = (flag: string) => launch.command[launch.command.indexOf(flag) + 1]
    // Four fixture shards, each weighted 1.0, produced by tokenize stages that have not run yet.
    const dataPath = launch.command.slice(launch.command.indexOf("--data-path") + 1, launch.command.indexOf("--split"))
    expect(dataPath).toEqual([0, 1, 2, 3].flatMap((i) => ["1.0", `<dataset of tokenize/dclm-tiny-000${i}>`]))
    expect(after("--save")).toBe(path.join(ws, "staging", "train", "flame-moe-290m", "<fingerprint>"))
    expect(after("--wandb-project")).toBe("flame-moe")
    expect(after("--wandb-exp-name")).toBe("<job id>")
    expect(launch.command).not.toContain("--sequence-parallel")
  })

  it("plan prints the launch a run starts, and show reads it back from that execution's log", async () => {
    const ws = tempWorkspace("fp-show-launch-")
    const pipeline = path.join(root, "test", "integration", "slurm", "pipelines", "megatron.ts")
    // A launcher that does not exist: the stage logs its launch and fails at once.
    const args = ["--workspace", ws, "--gpus", "0,1", "--set", "train/tiny.megatron.torchrun=/nonexistent/torchrun"]
    const run = await flamePipe(["run", pipeline, ...args])
    expect(run.exitCode).toBe(1)
    const shown = await flamePipe(["show", "train/tiny", "--workspace", ws, "--json"])
    expect(shown.exitCode, shown.stderr).toBe(0)
    const launched = (JSON.parse(shown.stdout) as { launch: { env: Record<string, string>; command: Array<string> } })
      .launch
    expect(launched.env).toEqual({ CUDA_VISIBLE_DEVICES: "0,1", ...flameMoeEnv })
    expect(launched.command[0]).toBe("/nonexistent/torchrun")

    const planned = await flamePipe(["plan", pipeline, ...args, "--json"])
    expect(planned.exitCode, planned.stderr).toBe(0)
    const launch = (JSON.parse(planned.stdout) as {
      stages: ReadonlyArray<{ stage: string; launch?: { env: Record<string, string>; command: Array<string> } }>
    }).stages.find((s) => s.stage === "train/tiny")!.launch!
    expect(launch.env).toEqual({ ...launched.env, CUDA_VISIBLE_DEVICES: "<2 GPU slots>" })
    // Word for word the same, but for the rendezvous id (the run's start time).
    const differing = launch.command.flatMap((w, i) => (w === launched.command[i] ? [] : [[w, launched.command[i]]]))
    expect(differing).toEqual([["train/tiny-<start time>", expect.stringMatching(/^train\/tiny-\d+$/)]])
    expect(launch.command).toHaveLength(launched.command.length)

    const text = await flamePipe(["show", "train/tiny", "--workspace", ws])
    const log = fs.readFileSync(path.join(ws, JSON.parse(shown.stdout).execution.logPath), "utf8").split("\n")
    const at = text.stdout.split("\n").findIndex((l) => l === "  launch")
    expect(text.stdout.split("\n").slice(at + 1, at + 3).map((l) => l.trim())).toEqual(log.slice(0, 2))
  }, 120_000)
})
