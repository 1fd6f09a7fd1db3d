/**
 * The Megatron backend on the local executor (no Slurm needed): a single-node run starts torchrun
 * directly with the GPU slots it was given and leaves Megatron's torch_dist checkpoints, a
 * multi-node layout is refused with a pointer to the Slurm executor, and the tiny suite (one scale)
 * closes on it: its evaluations, traces, routing analyses and report run on what the doubles saved.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { runJson, tempWorkspace } from "../../support/cli.ts"
import { pipelineModule } from "./cluster.ts"
import {
  artifactOf,
  expectSuiteOnMegatron,
  expectTorchDist,
  onMegatronDoubles,
  SCALE,
  stageLog
} from "./megatronSuite.ts"

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
    // The fixture tokenizer's 2583 ids, padded as Megatron pads them.
    expect(log).toContain("padded vocab (size: 2583) with 105 dummy tokens (new size: 2688)")
    for (const step of [10, 20, 30]) {
      expectTorchDist(artifactOf(ws, "train/tiny", `iter_${String(step).padStart(7, "0")}`))
    }

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

  it("the tiny suite closes on it: eval, trace, analyses and report of the checkpoints the doubles saved", async () => {
    const ws = tempWorkspace("fp-megatron-suite-")
    const { result, summary } = await runJson([
      pipelineModule("suite-megatron"),
      "--workspace",
      ws,
      "--gpus",
      "0,1",
      ...onMegatronDoubles()
    ])
    expect(result.exitCode, result.stderr.slice(-3000)).toBe(0)
    expect(summary?.status).toBe("succeeded")
    expect(summary?.executed).toBe(summary?.stages.length)
    const train = stageLog(ws, `train/${SCALE}`)
    expect(train).toMatch(/fake-torchrun\.mjs --nnodes 1 --node_rank 0 --nproc_per_node 2 /)
    expect(train).toContain("new size: 2688")
    const steps = summary!.stages.filter((s) => s.stage.startsWith(`eval/${SCALE}/`)).map((s) =>
      Number(s.stage.split("/").pop())
    ).sort((a, b) => a - b)
    // 10 interval checkpoints and Megatron's extra final one.
    expect(steps).toHaveLength(11)
    expectSuiteOnMegatron(ws, steps)
    for (const analysis of ["saturation", "load-balance", "coactivation", "specialization"]) {
      expect(summary?.stages.find((s) => s.stage === `analysis/${SCALE}/${analysis}`)?.status).toBe("executed")
    }
    const report = fs.readFileSync(artifactOf(ws, "suite/report", "report.html"), "utf8")
    expect(report).toContain(SCALE)
    expect(report).toContain(`analysis/${SCALE}/specialization`)
  })
})
