/**
 * The launch's shell words read by bash itself: the node-rank shim and the logged launch line.
 */
import { execa } from "execa"
import { describe, expect, it } from "vitest"
import { launchLines, NODE_RANK, nodeRankShim, splitShellWords } from "../../../src/megatron/Launch.ts"

describe("launching Megatron-LM, read by bash", () => {
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

  it("bash reads the logged launch line as the words launched, as the reader does", async () => {
    const plan = {
      file: "srun",
      args: ["--chdir=/opt/M LM", "bash", "-c", nodeRankShim, "--moe-layer-freq", "[0]*1+[1]*8", "it's", "a\\b", ""],
      env: { CUDA_VISIBLE_DEVICES: "0,1", NCCL_SOCKET_IFNAME: "^lo,docker", X: "a b" },
      cwd: "/opt/M LM"
    }
    const lines = launchLines(plan)
    // bash reads the words as they were, and so does the reader.
    const command = lines[1]!.slice(lines[1]!.indexOf(") ") + 2)
    const words = await execa("bash", ["-c", `printf '%s\\0' ${command}`])
    expect(words.stdout.split("\0").slice(0, -1)).toEqual(["srun", ...plan.args])
    expect(splitShellWords(command)).toEqual(["srun", ...plan.args])
  })
})
