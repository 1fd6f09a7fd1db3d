#!/usr/bin/env node
// TEST DOUBLE for PyTorch's `torchrun`, used by the Megatron backend's tests (PyTorch is not
// installed here). It accepts torchrun's rendezvous arguments as FLAME-MoE passes them, checks them
// against the Slurm allocation it runs in (node count, node rank, job id, rendezvous host, visible
// GPUs), then starts --nproc_per_node copies of the training script with torchrun's environment
// (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, ...) and waits for them. The script runs under node,
// not python. A failing rank stops the others, as torchrun's elastic agent does.
import { spawn } from "node:child_process"

const fail = (message) => {
  console.error(`fake-torchrun: error: ${message}`)
  process.exit(2)
}

const valueOptions = new Set([
  "nnodes",
  "node_rank",
  "node-rank",
  "nproc_per_node",
  "nproc-per-node",
  "rdzv-id",
  "rdzv_id",
  "rdzv-backend",
  "rdzv_backend",
  "rdzv-endpoint",
  "rdzv_endpoint",
  "master_addr",
  "master_port",
  "max_restarts"
])
const flagOptions = new Set(["standalone"])

const argv = process.argv.slice(2)
const options = {}
let i = 0
for (; i < argv.length; i++) {
  const arg = argv[i]
  if (!arg.startsWith("--")) break
  const [name, inline] = arg.slice(2).split(/=(.*)/s)
  if (flagOptions.has(name)) options[name] = true
  else if (valueOptions.has(name)) options[name.replace(/_/g, "-")] = inline ?? argv[++i]
  else fail(`unrecognized arguments: ${arg}`)
}
const script = argv[i]
const scriptArgs = argv.slice(i + 1)
if (script === undefined) fail("the following arguments are required: training_script")

const int = (name) => {
  const value = options[name]
  if (value === undefined || !/^\d+$/.test(value)) fail(`--${name} must be an integer, got ${value}`)
  return Number(value)
}
const nnodes = int("nnodes")
const nodeRank = int("node-rank")
const nproc = int("nproc-per-node")
if (nodeRank >= nnodes) fail(`--node_rank ${nodeRank} is not below --nnodes ${nnodes}`)
if (options["rdzv-backend"] !== "c10d") fail(`expected --rdzv-backend c10d, got ${options["rdzv-backend"]}`)
const endpoint = /^([^:]+):(\d+)$/.exec(options["rdzv-endpoint"] ?? "")
if (!endpoint) fail(`--rdzv-endpoint must be host:port, got ${options["rdzv-endpoint"]}`)

/** The first host of a Slurm hostlist such as "gpu[003-004,9]" or "vm". */
const firstHost = (list) => {
  const first = list.split(/,(?![^[]*\])/)[0]
  const match = /^([^[]*)\[([^\]-]+)/.exec(first)
  return match ? match[1] + match[2].split(",")[0] : first
}

const env = process.env
if (env.SLURM_JOB_ID !== undefined) {
  const nodes = Number(env.SLURM_JOB_NUM_NODES ?? env.SLURM_NNODES)
  if (nnodes !== nodes) fail(`--nnodes ${nnodes} but the Slurm job has ${nodes} nodes`)
  if (String(nodeRank) !== env.SLURM_NODEID) fail(`--node_rank ${nodeRank} but SLURM_NODEID is ${env.SLURM_NODEID}`)
  if (options["rdzv-id"] !== env.SLURM_JOB_ID) {
    fail(`--rdzv-id ${options["rdzv-id"]} but SLURM_JOB_ID is ${env.SLURM_JOB_ID}`)
  }
  const head = firstHost(env.SLURM_JOB_NODELIST ?? "")
  if (endpoint[1] !== head) fail(`rendezvous on ${endpoint[1]}, but the job's first node is ${head}`)
}
if (env.CUDA_VISIBLE_DEVICES !== undefined) {
  const visible = env.CUDA_VISIBLE_DEVICES.split(",").filter((d) => d !== "").length
  if (visible !== nproc) fail(`--nproc_per_node ${nproc} but ${visible} GPU(s) are visible (CUDA_VISIBLE_DEVICES)`)
}

const children = []
let exitCode = 0
let running = nproc
const stopAll = (signal) => {
  for (const child of children) if (child.exitCode === null) child.kill(signal)
}
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => stopAll(signal))
for (let local = 0; local < nproc; local++) {
  const child = spawn(process.execPath, [script, ...scriptArgs], {
    stdio: "inherit",
    env: {
      ...env,
      RANK: String(nodeRank * nproc + local),
      LOCAL_RANK: String(local),
      GROUP_RANK: String(nodeRank),
      WORLD_SIZE: String(nnodes * nproc),
      LOCAL_WORLD_SIZE: String(nproc),
      MASTER_ADDR: endpoint[1],
      MASTER_PORT: endpoint[2],
      TORCHELASTIC_RUN_ID: options["rdzv-id"] ?? "none"
    }
  })
  child.on("exit", (code, signal) => {
    running--
    const failed = code !== 0
    if (failed && exitCode === 0) {
      exitCode = code ?? 1
      console.error(
        `fake-torchrun: rank ${nodeRank * nproc + local} exited with ${code ?? signal}; stopping the others`
      )
      stopAll("SIGTERM")
    }
    if (running === 0) process.exit(exitCode)
  })
  children.push(child)
}
