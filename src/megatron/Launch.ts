/**
 * How pretrain_gpt.py is started. Inside a Slurm allocation (the Slurm executor's batch job), srun
 * starts one torchrun per node and torchrun one process per GPU, the ranks meeting at a c10d
 * rendezvous on the first node of the job, with FLAME-MoE's torchrun arguments. Outside Slurm, a
 * single-node run starts torchrun directly.
 */
import { Either } from "effect"
import * as path from "node:path"
import { firstHost } from "../slurm/Hostlist.ts"
import type { MegatronParams } from "./Params.ts"

export interface LaunchPlan {
  readonly file: string
  readonly args: ReadonlyArray<string>
  readonly env: Readonly<Record<string, string>>
  readonly cwd: string
}

/** Placeholder for each node's rank, replaced per node by the shim srun runs (SLURM_NODEID differs per node). */
export const NODE_RANK = "@NODE_RANK@"

/** bash: run the arguments with @NODE_RANK@ replaced by this node's SLURM_NODEID, keeping every word intact. */
export const nodeRankShim = `args=("$@"); exec "\${args[@]//${NODE_RANK}/$SLURM_NODEID}"`

export interface Rendezvous {
  readonly nnodes: number
  readonly nodeRank: string
  readonly nprocPerNode: number
  readonly id: string
  readonly endpoint: string
}

/** FLAME-MoE's TORCH_ARGS. */
export const torchrunArguments = (r: Rendezvous): ReadonlyArray<string> => [
  "--nnodes",
  String(r.nnodes),
  "--node_rank",
  r.nodeRank,
  "--nproc_per_node",
  String(r.nprocPerNode),
  "--rdzv-id",
  r.id,
  "--rdzv-backend",
  "c10d",
  "--rdzv-endpoint",
  r.endpoint
]

export const launchPlan = (
  m: MegatronParams,
  pretrainArgs: ReadonlyArray<string>,
  env: Readonly<Record<string, string | undefined>>,
  options: { readonly runId: string; readonly cpus: number }
): Either.Either<LaunchPlan, string> => {
  const cwd = path.resolve(m.path)
  const script = path.resolve(cwd, m.script)
  const launcherEnv: Record<string, string> = {
    // Megatron needs one CUDA connection for its overlap of communication with computation.
    CUDA_DEVICE_MAX_CONNECTIONS: "1",
    OMP_NUM_THREADS: String(Math.max(1, Math.floor(options.cpus / m.gpusPerNode))),
    ...m.env
  }
  const jobId = env.SLURM_JOB_ID
  if (jobId === undefined) {
    if (m.nodes > 1) {
      return Either.left(
        `megatron.nodes is ${m.nodes}: a multi-node run needs a Slurm allocation (run with --executor slurm)`
      )
    }
    const rendezvous = torchrunArguments({
      nnodes: 1,
      nodeRank: "0",
      nprocPerNode: m.gpusPerNode,
      id: options.runId,
      endpoint: `localhost:${m.rdzvPort ?? 29500}`
    })
    return Either.right({ file: m.torchrun, args: [...rendezvous, script, ...pretrainArgs], env: launcherEnv, cwd })
  }
  const nodes = Number(env.SLURM_JOB_NUM_NODES ?? env.SLURM_NNODES ?? "1")
  if (nodes !== m.nodes) {
    return Either.left(`the Slurm job has ${nodes} node(s) but megatron.nodes is ${m.nodes}`)
  }
  const head = firstHost(env.SLURM_JOB_NODELIST ?? env.SLURM_NODELIST ?? "")
  if (head === undefined) return Either.left("SLURM_JOB_NODELIST is not set: cannot place the rendezvous")
  // Derived from the job id, so two jobs sharing a node do not meet at the same port.
  const port = m.rdzvPort ?? 20000 + (Number(jobId) % 20000)
  const rendezvous = torchrunArguments({
    nnodes: nodes,
    nodeRank: NODE_RANK,
    nprocPerNode: m.gpusPerNode,
    id: jobId,
    endpoint: `${head}:${port}`
  })
  return Either.right({
    file: "srun",
    args: [
      `--nodes=${nodes}`,
      "--ntasks-per-node=1",
      "--kill-on-bad-exit=1",
      "--export=ALL",
      `--chdir=${cwd}`,
      "bash",
      "-c",
      nodeRankShim,
      "flame-pipe-launch",
      m.torchrun,
      ...rendezvous,
      script,
      ...pretrainArgs
    ],
    env: launcherEnv,
    cwd
  })
}
