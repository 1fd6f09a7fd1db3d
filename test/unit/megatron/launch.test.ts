import { Either } from "effect"
import { execa } from "execa"
import { describe, expect, it } from "vitest"
import { launchPlan, NODE_RANK, nodeRankShim } from "../../../src/megatron/Launch.ts"
import { defaultMegatronParams } from "../../../src/megatron/Params.ts"

const m = { ...defaultMegatronParams, path: "/opt/Megatron-LM" }
const slurmEnv = { SLURM_JOB_ID: "4242", SLURM_JOB_NUM_NODES: "4", SLURM_JOB_NODELIST: "gpu[012-015]" }

describe("launching Megatron-LM", () => {
  it("in a 4-node allocation: srun starts one torchrun per node with FLAME-MoE's rendezvous arguments", () => {
    const plan = Either.getOrThrow(launchPlan(m, ["--num-layers", "18"], slurmEnv, { runId: "r", cpus: 64 }))
    expect(plan.file).toBe("srun")
    expect(plan.cwd).toBe("/opt/Megatron-LM")
    const shim = plan.args.indexOf(nodeRankShim)
    expect(plan.args.slice(0, shim)).toEqual([
      "--nodes=4",
      "--ntasks-per-node=1",
      "--kill-on-bad-exit=1",
      "--export=ALL",
      "--chdir=/opt/Megatron-LM",
      "bash",
      "-c"
    ])
    expect(plan.args.slice(shim + 1)).toEqual([
      "flame-pipe-launch",
      "torchrun",
      "--nnodes",
      "4",
      "--node_rank",
      NODE_RANK,
      "--nproc_per_node",
      "8",
      "--rdzv-id",
      "4242",
      "--rdzv-backend",
      "c10d",
      "--rdzv-endpoint",
      `gpu012:${20000 + 4242}`,
      "/opt/Megatron-LM/pretrain_gpt.py",
      "--num-layers",
      "18"
    ])
    expect(plan.env).toMatchObject({ CUDA_DEVICE_MAX_CONNECTIONS: "1", OMP_NUM_THREADS: "8" })
  })

  it("the shim gives each node its own rank and keeps every word intact", async () => {
    const out = await execa("bash", [
      "-c",
      nodeRankShim,
      "flame-pipe-launch",
      "printf",
      "[%s]",
      "--node_rank",
      NODE_RANK,
      "[0]*1+[1]*8",
      "a b"
    ], {
      env: { SLURM_NODEID: "3" }
    })
    expect(out.stdout).toBe("[--node_rank][3][[0]*1+[1]*8][a b]")
  })

  it("outside Slurm: one node, torchrun directly; a multi-node layout or a mismatched allocation is refused", () => {
    const local = Either.getOrThrow(
      launchPlan({ ...m, nodes: 1, gpusPerNode: 2, rdzvPort: 29600 }, [], {}, { runId: "run-7", cpus: 4 })
    )
    expect(local.file).toBe("torchrun")
    expect(local.args).toEqual([
      "--nnodes",
      "1",
      "--node_rank",
      "0",
      "--nproc_per_node",
      "2",
      "--rdzv-id",
      "run-7",
      "--rdzv-backend",
      "c10d",
      "--rdzv-endpoint",
      "localhost:29600",
      "/opt/Megatron-LM/pretrain_gpt.py"
    ])
    expect(launchPlan(m, [], {}, { runId: "r", cpus: 1 })).toEqual(
      Either.left("megatron.nodes is 4: a multi-node run needs a Slurm allocation (run with --executor slurm)")
    )
    expect(launchPlan(m, [], { ...slurmEnv, SLURM_JOB_NUM_NODES: "2" }, { runId: "r", cpus: 1 })).toEqual(
      Either.left("the Slurm job has 2 node(s) but megatron.nodes is 4")
    )
  })
})
