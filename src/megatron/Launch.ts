/**
 * How pretrain_gpt.py is started. Inside a Slurm allocation (the Slurm executor's batch job), srun
 * starts one torchrun per node and torchrun one process per GPU, the ranks meeting at a c10d
 * rendezvous on the first node of the job, with FLAME-MoE's torchrun arguments and environment.
 * Outside Slurm, a single-node run starts torchrun directly.
 *
 * The launch is written to the stage's log as two lines (`launchLines`): the environment it sets,
 * then the command; `show` reads them back (`launchFromLog`), `plan` prints the same lines for a
 * run that has not happened yet, with placeholders (`<job id>`) for what only the job knows.
 */
import { Either } from "effect"
import * as path from "node:path"
import { firstHost } from "../slurm/Hostlist.ts"
import { shellQuote } from "../slurm/JobScript.ts"
import type { MegatronParams } from "./Params.ts"
import { flameMoeEnvironment } from "./Params.ts"

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

/** A value only the Slurm job will know, in a launch shown before it runs (`plan`). */
export const placeholder = (what: string): string => `<${what}>`
const isPlaceholder = (word: string): boolean => /^<[^<>]+>$/.test(word)

/** The rendezvous port: derived from the job id, so two jobs sharing a node do not meet at the same port. */
const rendezvousPort = (m: MegatronParams, jobId: string): string =>
  m.rdzvPort !== undefined
    ? String(m.rdzvPort)
    : /^\d+$/.test(jobId)
    ? String(20000 + (Number(jobId) % 20000))
    : placeholder("20000 + job id % 20000")

/** The launcher's environment: Megatron's CUDA setting, FLAME-MoE's exports, then `megatron.env`. */
export const launcherEnvironment = (m: MegatronParams): Record<string, string> => ({
  // Megatron needs one CUDA connection for its overlap of communication with computation.
  CUDA_DEVICE_MAX_CONNECTIONS: "1",
  ...flameMoeEnvironment,
  ...m.env
})

export const launchPlan = (
  m: MegatronParams,
  pretrainArgs: ReadonlyArray<string>,
  env: Readonly<Record<string, string | undefined>>,
  options: { readonly runId: string }
): Either.Either<LaunchPlan, string> => {
  const cwd = path.resolve(m.path)
  const script = path.resolve(cwd, m.script)
  const launcherEnv = launcherEnvironment(m)
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
  const nodelist = env.SLURM_JOB_NODELIST ?? env.SLURM_NODELIST ?? ""
  const head = isPlaceholder(nodelist) ? nodelist : firstHost(nodelist)
  if (head === undefined) return Either.left("SLURM_JOB_NODELIST is not set: cannot place the rendezvous")
  const port = rendezvousPort(m, jobId)
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

/** A word of a launch line: shell-quoted, except one with a placeholder, which is not meant to be pasted as is. */
const quoteWord = (word: string): string => (/<[^<>]+>/.test(word) ? word : shellQuote(word))

/**
 * The launch as the stage's log records it and `plan`/`show` print it: `$ export VAR=value ...` (what
 * the launcher's environment adds to the stage's), then `$ (cd DIR) COMMAND ARGS...`.
 */
export const launchLines = (plan: LaunchPlan): readonly [string, string] => [
  `$ export ${Object.entries(plan.env).map(([k, v]) => `${k}=${quoteWord(v)}`).join(" ")}`,
  `$ (cd ${quoteWord(plan.cwd)}) ${[plan.file, ...plan.args].map(quoteWord).join(" ")}`
]

/** The words of a line `launchLines` wrote: unquoted words, and '...' with \' (as '\\'') inside. */
export const splitShellWords = (line: string): Array<string> => {
  const words: Array<string> = []
  let i = 0
  while (i < line.length) {
    while (line[i] === " ") i++
    if (i >= line.length) break
    let word = ""
    while (i < line.length && line[i] !== " ") {
      if (line[i] === "'") {
        const end = line.indexOf("'", i + 1)
        const stop = end < 0 ? line.length : end
        word += line.slice(i + 1, stop)
        i = stop + 1
      } else if (line[i] === "\\" && i + 1 < line.length) {
        word += line[i + 1]
        i += 2
      } else word += line[i++]
    }
    words.push(word)
  }
  return words
}

export interface LoggedLaunch {
  /** The two lines as logged. */
  readonly lines: ReadonlyArray<string>
  readonly plan: LaunchPlan
}

/**
 * The launches a stage's log records, in order (a resumed or requeued job launches again, into the same
 * log), read back into plans.
 */
export const launchesFromLog = (log: string): ReadonlyArray<LoggedLaunch> => {
  const out: Array<LoggedLaunch> = []
  const lines = log.split("\n")
  for (let i = 0; i < lines.length; i++) {
    const command = /^\$ \(cd (.*?)\) (.*)$/.exec(lines[i]!)
    if (command === null) continue
    const exported = i > 0 && lines[i - 1]!.startsWith("$ export ") ? lines[i - 1]! : undefined
    const env: Record<string, string> = {}
    for (const word of exported === undefined ? [] : splitShellWords(exported.slice("$ export ".length))) {
      const eq = word.indexOf("=")
      if (eq > 0) env[word.slice(0, eq)] = word.slice(eq + 1)
    }
    const [file, ...args] = splitShellWords(command[2]!)
    out.push({
      lines: exported === undefined ? [lines[i]!] : [exported, lines[i]!],
      plan: { file: file ?? "", args, env, cwd: splitShellWords(command[1]!)[0] ?? "" }
    })
  }
  return out
}
