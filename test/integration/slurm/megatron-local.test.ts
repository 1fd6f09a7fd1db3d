/**
 * The Megatron backend on the local executor (no Slurm needed): a single-node run starts torchrun
 * directly with the GPU slots it was given, and a multi-node layout is refused with a pointer to
 * the Slurm executor.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { runJson, tempWorkspace } from "../../support/cli.ts"
import { pipelineModule } from "./cluster.ts"

describe("Megatron backend on the local executor (test doubles)", () => {
  it("runs torchrun on this machine with the GPU slots handed out; refuses more than one node", async () => {
    const ws = tempWorkspace("fp-megatron-local-")
    const { result, summary } = await runJson([pipelineModule("megatron"), "--workspace", ws, "--gpus", "0,1"])
    expect(result.exitCode, result.stderr.slice(-3000)).toBe(0)
    expect(summary?.status).toBe("succeeded")
    const dir = path.join(ws, "logs", "train", "tiny")
    const log = fs.readFileSync(path.join(dir, fs.readdirSync(dir)[0]!), "utf8")
    expect(log).toMatch(
      /fake-torchrun\.mjs --nnodes 1 --node_rank 0 --nproc_per_node 2 .*--rdzv-endpoint localhost:29500/
    )
    expect(log).toContain("world size 2")

    const multi = await runJson([
      pipelineModule("megatron"),
      "--workspace",
      ws,
      "--gpus",
      "0,1",
      "--set",
      "train/tiny.megatron.nodes=2"
    ])
    expect(multi.result.exitCode).toBe(1)
    expect(multi.summary?.stages.find((s) => s.stage === "train/tiny")?.error).toBe(
      "needs 2 nodes; run it with --executor slurm"
    )
  })
})
