import { Either } from "effect"
import { describe, expect, it } from "vitest"
import {
  launchesFromLog,
  launchLines,
  launchPlan,
  NODE_RANK,
  nodeRankShim,
  splitShellWords
} from "../../../src/megatron/Launch.ts"
import { defaultMegatronParams, megatronResources } from "../../../src/megatron/Params.ts"

const m = { ...defaultMegatronParams, path: "/opt/Megatron-LM" }
const slurmEnv = { SLURM_JOB_ID: "4242", SLURM_JOB_NUM_NODES: "4", SLURM_JOB_NODELIST: "gpu[012-015]" }

describe("launching Megatron-LM", () => {
  it("in a 4-node allocation: srun starts one torchrun per node with FLAME-MoE's rendezvous arguments", () => {
    const plan = Either.getOrThrow(launchPlan(m, ["--num-layers", "18"], slurmEnv, { runId: "r" }))
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
  })

  it("sets FLAME-MoE's environment (flame-moe_step2.sh's exports) and Megatron's CUDA setting; megatron.env wins", () => {
    const plan = Either.getOrThrow(launchPlan(m, [], slurmEnv, { runId: "r" }))
    expect(plan.env).toEqual({
      // Megatron-LM asserts it with tensor or context parallelism; it overlaps communication with it.
      CUDA_DEVICE_MAX_CONNECTIONS: "1",
      // scripts/training/modules/flame-moe_step2.sh
      OMP_NUM_THREADS: "16",
      TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD: "true",
      TORCH_NCCL_TRACE_BUFFER_SIZE: "8",
      TORCH_NCCL_DUMP_ON_TIMEOUT: "1"
    })
    const mine = Either.getOrThrow(
      launchPlan({ ...m, env: { OMP_NUM_THREADS: "8", NCCL_DEBUG: "INFO" } }, [], slurmEnv, { runId: "r" })
    )
    expect(mine.env).toMatchObject({ OMP_NUM_THREADS: "8", NCCL_DEBUG: "INFO", TORCH_NCCL_DUMP_ON_TIMEOUT: "1" })
  })

  it("asks Slurm for FLAME-MoE's job resources by default (scripts/training/flame-moe.sh's #SBATCH header)", () => {
    // --nodes=4 --mem=1536G --cpus-per-task=208 --gres=gpu:8 --time=14-00:00:00 (Slurm's G is 1024 M)
    expect(megatronResources(defaultMegatronParams)).toEqual({ nodes: 4, cpus: 208, gpus: 8, memoryMb: 1536 * 1024 })
    expect(defaultMegatronParams.time).toBe("14-00:00:00")
  })

  it("outside Slurm: one node, torchrun directly; a multi-node layout or a mismatched allocation is refused", () => {
    const local = Either.getOrThrow(
      launchPlan({ ...m, nodes: 1, gpusPerNode: 2, rdzvPort: 29600 }, [], {}, { runId: "run-7" })
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
    expect(launchPlan(m, [], {}, { runId: "r" })).toEqual(
      Either.left("megatron.nodes is 4: a multi-node run needs a Slurm allocation (run with --executor slurm)")
    )
    expect(launchPlan(m, [], { ...slurmEnv, SLURM_JOB_NUM_NODES: "2" }, { runId: "r" })).toEqual(
      Either.left("the Slurm job has 2 node(s) but megatron.nodes is 4")
    )
  })

  it("logs the launch as two lines that read back into the same launch, every word intact", () => {
    const plan = {
      file: "srun",
      args: ["--chdir=/opt/M LM", "bash", "-c", nodeRankShim, "--moe-layer-freq", "[0]*1+[1]*8", "it's", "a\\b", ""],
      env: { CUDA_VISIBLE_DEVICES: "0,1", NCCL_SOCKET_IFNAME: "^lo,docker", X: "a b" },
      cwd: "/opt/M LM"
    }
    const lines = launchLines(plan)
    expect(lines[0]).toBe("$ export CUDA_VISIBLE_DEVICES=0,1 NCCL_SOCKET_IFNAME='^lo,docker' X='a b'")
    expect(lines[1]!.startsWith("$ (cd '/opt/M LM') srun '--chdir=/opt/M LM' bash -c 'args=(")).toBe(true)
    const log = [
      "starting",
      ...lines,
      " [2026] iteration 1/ 30 | lm loss: 1.0",
      ...launchLines({ ...plan, file: "srun2" })
    ]
    const launches = launchesFromLog(log.join("\n"))
    expect(launches.map((l) => l.plan)).toEqual([plan, { ...plan, file: "srun2" }])
    expect(launches[0]!.lines).toEqual(lines)
    // The reader splits the logged line into the words launched (bash reads them the same way:
    // test/oracle/megatron/launch.test.ts).
    const command = lines[1]!.slice(lines[1]!.indexOf(") ") + 2)
    expect(splitShellWords(command)).toEqual(["srun", ...plan.args])
  })
})
