// Resuming under another learning-rate schedule (kernels/src/checkpoint.h): a run that branches
// off another one's checkpoint (e.g. to anneal early) reproduces the branch trained from scratch
// bit for bit, and is refused wherever the two runs would not have passed through the same state.
// Also the WSD decay styles (train.wsdDecayStyle) and the extra checkpoints of train.saveIters.
import { execa } from "execa"
import { createHash } from "node:crypto"
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { lrAfterSteps } from "../../../src/flame/schedule.ts"
import type { WorkerRun } from "./helpers.ts"
import {
  kernelsDir,
  metricValues,
  resultOf,
  runWorker,
  syntheticCorpus,
  writeIndexedDataset,
  writeJson
} from "./helpers.ts"

const work = mkdtempSync(join(tmpdir(), "flame-worker-prefix-"))
const prefix = join(work, "corpus", "synthetic_text_document")
const docs = syntheticCorpus(1500, 64)

const model = {
  vocabSize: 64,
  hiddenSize: 64,
  numLayers: 3,
  numAttentionHeads: 4,
  ffnHiddenSize: 128,
  moeFfnHiddenSize: 32,
  numExperts: 8,
  topK: 2,
  moeLayers: "[0]*1+[1]*2",
  seqLength: 32
}
const base = { globalBatchSize: 16, microBatchSize: 8, logInterval: 10, lr: 3e-3, minLr: 3e-4, saveInterval: 0 }
// The long run: 3 warm-up iterations, then a constant rate to iteration 30 (no anneal).
const constant = { ...base, trainIters: 30, warmupIters: 3, wsdIters: 0, saveInterval: 25, saveIters: [20, 18, 25] }
// The branch: the same warm-up, annealed over its last 2 iterations (from iteration 19's step on)
// towards another minLr. Its lrs equal the constant run's up to iteration 19.
const branch = { ...base, trainIters: 20, warmupIters: 3, wsdIters: 2, minLr: 1e-4 }

const config = (name: string, train: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  writeJson(join(work, `${name}.json`), {
    model,
    train,
    data: { prefix },
    ...extra,
    runtime: { threads: 2, outputDir: join(work, name), ...(extra["runtime"] as object | undefined) }
  })
const train = async (name: string, t: Record<string, unknown>, extra: Record<string, unknown> = {}) => {
  const r = await runWorker(["train", "--config", config(name, t, extra)])
  expect(r.exitCode, r.stderr).toBe(0)
  return r
}
const resumeFrom = (checkpoint: string) => ({ runtime: { resumeFrom: checkpoint } })

const sha = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex")
const checkpointHashes = (dir: string) =>
  Object.fromEntries(["model.safetensors", "optimizer.safetensors", "state.json"].map((f) => [f, sha(join(dir, f))]))
const stateOf = (dir: string) => JSON.parse(readFileSync(join(dir, "state.json"), "utf8")) as Record<string, unknown>
const logMessages = (r: WorkerRun) => r.messages.filter((m) => m.type === "log").map((m) => String(m["message"]))

const expectRefusal = async (
  name: string,
  t: Record<string, unknown>,
  extra: Record<string, unknown>,
  pattern: RegExp
) => {
  const r = await runWorker(["train", "--config", config(name, t, extra)])
  expect(r.exitCode, r.stderr).toBe(4)
  expect(r.stderr).toMatch(pattern)
  const err = r.messages.find((m) => m.type === "log" && m["level"] === "error")
  expect(String(err?.["message"])).toMatch(pattern)
  expect(metricValues(r, "loss")).toEqual([])
}

beforeAll(async () => {
  await execa("make", ["-C", kernelsDir, "-j2"])
  writeIndexedDataset(prefix, docs)
})
afterAll(() => rmSync(work, { recursive: true, force: true }))

describe("flame-worker: resuming under another schedule", () => {
  let constantRun: WorkerRun
  it("saveIters writes exactly the listed checkpoints besides saveInterval's and the last", async () => {
    constantRun = await train("constant", constant)
    const expected = ["iter_0000018", "iter_0000020", "iter_0000025", "iter_0000030"]
    expect(constantRun.messages.filter((m) => m.type === "artifact").map((m) => m["path"])).toEqual(expected)
    expect(resultOf(constantRun)["checkpoints"]).toEqual(expected)
    expect(readdirSync(join(work, "constant")).sort()).toEqual(expected)
    // It does not change the training state, so it is not part of the training config.
    const state = stateOf(join(work, "constant", "iter_0000018"))
    expect(state["iteration"]).toBe(18)
    expect(state["train"]).not.toHaveProperty("saveIters")
    expect(state["train"]).not.toHaveProperty("wsdDecayStyle")
    const lr = metricValues(constantRun, "lr")
    expect(lr.slice(0, 3)).toEqual([0, 1e-3, 2e-3])
    expect(lr[3]).toBeCloseTo(3e-3, 15) // the end of the warm-up, 3e-3 * 3 / 3
    expect(lr.slice(4).every((x) => x === 3e-3)).toBe(true)
  })

  it("refuses saveIters that are not positive integers up to trainIters", async () => {
    for (
      const [saveIters, pattern] of [
        [[31], /config\.train\.saveIters: 31 exceeds trainIters 30/],
        [[0], /config\.train\.saveIters: expected array of positive integers, got \[0\]/],
        [[2.5], /config\.train\.saveIters: expected array of positive integers/],
        [18, /config\.train\.saveIters: expected array of positive integers, got 18/]
      ] as const
    ) {
      const r = await runWorker(["train", "--config", config("bad-save-iters", { ...constant, saveIters })])
      expect(r.exitCode, r.stderr).toBe(2)
      expect(r.stderr).toMatch(pattern)
    }
  })

  it("a branch resumed from the constant run's checkpoint equals the branch trained from scratch", async () => {
    const scratch = await train("branch-scratch", branch)
    const resumed = await train("branch-resumed", branch, resumeFrom(join(work, "constant", "iter_0000018")))
    expect(logMessages(resumed)).toContain(
      `resumed from ${
        join(work, "constant", "iter_0000018")
      } at iteration 18: its schedule agrees with this one up to iteration 18`
    )
    // The two training configs differ (in the schedule only), and both runs read one epoch in the
    // same order: the checkpoint is a state the branch passes through.
    const c18 = stateOf(join(work, "constant", "iter_0000018"))
    const s20 = stateOf(join(work, "branch-scratch", "iter_0000020"))
    expect(c18["trainFingerprint"]).not.toBe(s20["trainFingerprint"])
    expect(c18["dataOrder"]).toEqual([{ epochs: 1, separateFinalEpoch: false }])
    expect(s20["dataOrder"]).toEqual(c18["dataOrder"])
    // The schedules agree up to iteration 19 and no further.
    const constantLr = metricValues(constantRun, "lr")
    const branchLr = metricValues(scratch, "lr")
    expect(branchLr.slice(0, 19)).toEqual(constantLr.slice(0, 19))
    expect(branchLr[19]).not.toBe(constantLr[19])
    // The resumed branch: the same losses and lrs for iterations 19 and 20, the same final checkpoint.
    expect(resultOf(resumed)["startIteration"]).toBe(18)
    expect(metricValues(resumed, "loss")).toEqual(metricValues(scratch, "loss").slice(18))
    expect(metricValues(resumed, "lr")).toEqual(branchLr.slice(18))
    expect(metricValues(resumed, "grad_norm")).toEqual(metricValues(scratch, "grad_norm").slice(18))
    expect(stateOf(join(work, "branch-resumed", "iter_0000020"))).toEqual(s20)
    expect(checkpointHashes(join(work, "branch-resumed", "iter_0000020"))).toEqual(
      checkpointHashes(join(work, "branch-scratch", "iter_0000020"))
    )
  })

  describe("refuses, naming the reason", () => {
    const at18 = () => resumeFrom(join(work, "constant", "iter_0000018"))
    it("a branch whose lr differs", async () => {
      await expectRefusal(
        "refuse-lr",
        { ...branch, lr: 2e-3 },
        at18(),
        /cannot resume: training config differs: train\.trainIters is 30 in the checkpoint but 20 in the config, and the learning rate differs at iteration 2: 0\.001 in the checkpoint's schedule, 0\.000666666\d* in the config's/
      )
    })
    it("a branch whose warm-up differs", async () => {
      await expectRefusal(
        "refuse-warmup",
        { ...branch, warmupIters: 4 },
        at18(),
        /cannot resume: training config differs: train\.trainIters is 30 in the checkpoint but 20 in the config, and the learning rate differs at iteration 2: 0\.001 in the checkpoint's schedule, 0\.00075 in the config's/
      )
      // A fractional warm-up: 0.1 * 20 = 2 iterations against the checkpoint's 3.
      const { warmupIters: _, ...fractional } = branch
      await expectRefusal(
        "refuse-warmup-fraction",
        { ...fractional, warmupFraction: 0.1 },
        at18(),
        /cannot resume: training config differs: train\.trainIters is 30 in the checkpoint but 20 in the config, and the learning rate differs at iteration 2: 0\.001 in the checkpoint's schedule, 0\.0015 in the config's/
      )
    })
    it("a branch whose init seed differs", async () => {
      await expectRefusal(
        "refuse-seed",
        { ...branch, seed: 1 },
        at18(),
        /cannot resume: training config differs: train\.seed is 1234 in the checkpoint but 1 in the config/
      )
    })
    it("a branch whose data seed differs", async () => {
      await expectRefusal(
        "refuse-data-seed",
        branch,
        { ...at18(), data: { prefix, seed: 7 } },
        /cannot resume: training config differs: train\.dataSeed is 1234 in the checkpoint but 7 in the config/
      )
    })
    it("a checkpoint past the branch's anneal start", async () => {
      // Iteration 20 trains with the lr after 19 steps: the branch has begun to anneal there.
      await expectRefusal(
        "refuse-past-anneal",
        branch,
        resumeFrom(join(work, "constant", "iter_0000020")),
        /cannot resume: training config differs: train\.trainIters is 30 in the checkpoint but 20 in the config, and the learning rate differs at iteration 20: 0\.003 in the checkpoint's schedule, 0\.0013\d* in the config's/
      )
      await expectRefusal(
        "refuse-past-end",
        branch,
        resumeFrom(join(work, "constant", "iter_0000025")),
        /iter_0000025: iteration 25 is beyond trainIters/
      )
    })
    it("a checkpoint without a recorded data order, as before", async () => {
      const legacy = join(work, "legacy", "iter_0000018")
      cpSync(join(work, "constant", "iter_0000018"), legacy, { recursive: true })
      const { dataOrder: _, ...state } = stateOf(legacy)
      writeFileSync(join(legacy, "state.json"), JSON.stringify(state) + "\n")
      await expectRefusal(
        "refuse-legacy",
        branch,
        resumeFrom(legacy),
        /cannot resume: training config differs: train\.trainIters is 30 in the checkpoint but 20 in the config$/m
      )
    })
    it("a checkpoint trained on another data order", async () => {
      // A dataset whose one epoch holds the branch's 320 samples but not the long run's 480: the
      // long run reads two epochs, shuffled otherwise from the first sample on.
      const small: Array<Array<number>> = []
      let tokens = 0
      for (const d of syntheticCorpus(400, 64, 3)) {
        if (tokens >= 12500) break
        small.push(d)
        tokens += d.length
      }
      const smallPrefix = join(work, "small", "small_text_document")
      writeIndexedDataset(smallPrefix, small)
      const data = { data: { prefix: smallPrefix, split: "100,0,0" } }
      await train("small-constant", { ...constant, saveInterval: 0, saveIters: [18] }, data)
      expect(stateOf(join(work, "small-constant", "iter_0000018"))["dataOrder"]).toEqual([
        { epochs: 2, separateFinalEpoch: true }
      ])
      await expectRefusal(
        "refuse-data-order",
        branch,
        { ...data, ...resumeFrom(join(work, "small-constant", "iter_0000018")) },
        /cannot resume: training config differs: train\.trainIters is 30 in the checkpoint but 20 in the config, and the checkpoint was trained on a different data order \(epochs \[2\] vs \[1\]\)/
      )
      // The same branch with splitSamples fixing the order of both resumes.
      const fixed = { data: { ...data.data, splitSamples: { train: 480, valid: 0, test: 0 } } }
      await train("small-constant-fixed", { ...constant, saveInterval: 0, saveIters: [18] }, fixed)
      const scratch = await train("small-branch-scratch", branch, fixed)
      const resumed = await train("small-branch-resumed", branch, {
        ...fixed,
        ...resumeFrom(join(work, "small-constant-fixed", "iter_0000018"))
      })
      expect(metricValues(resumed, "loss")).toEqual(metricValues(scratch, "loss").slice(18))
      expect(checkpointHashes(join(work, "small-branch-resumed", "iter_0000020"))).toEqual(
        checkpointHashes(join(work, "small-branch-scratch", "iter_0000020"))
      )
    })
  })
})

describe("flame-worker: WSD decay styles", () => {
  const annealed = { ...base, trainIters: 20, warmupIters: 3, wsdIters: 10 }
  const reference = (decayStyle: "exponential" | "linear" | "cosine" | "minus_sqrt") => ({
    maxLr: annealed.lr,
    minLr: annealed.minLr,
    trainIters: annealed.trainIters,
    globalBatchSize: annealed.globalBatchSize,
    warmupFraction: 0.01,
    warmupIters: annealed.warmupIters,
    wsdIters: annealed.wsdIters,
    decayStyle
  })
  it("linear, cosine and minus_sqrt follow Megatron's --lr-wsd-decay-style", async () => {
    const seen: Array<Array<number>> = []
    for (const style of ["linear", "cosine", "minus_sqrt"] as const) {
      const r = await train(`style-${style}`, { ...annealed, wsdDecayStyle: style })
      const lr = metricValues(r, "lr")
      expect(lr).toHaveLength(20)
      // Megatron's get_lr in samples (src/flame/schedule.ts): iteration i uses the lr after i - 1 steps.
      lr.forEach((x, i) => {
        const want = lrAfterSteps(reference(style), i)
        expect(Math.abs(x - want), `${style} iteration ${i + 1}: ${x} vs ${want}`).toBeLessThanOrEqual(1e-15 * want)
      })
      expect(lr.slice(4, 11).every((x) => x === annealed.lr)).toBe(true)
      expect(lr[15]).toBeLessThan(annealed.lr)
      expect(lr[19]).toBeGreaterThan(annealed.minLr)
      expect(stateOf(join(work, `style-${style}`, "iter_0000020"))["train"]).toHaveProperty("wsdDecayStyle", style)
      seen.push(lr)
    }
    // The styles are different curves over the anneal.
    expect(new Set(seen.map((lr) => lr[13])).size).toBe(3) // r = 0.3 (linear and cosine meet at 0.5)
  })

  it("exponential is the default and leaves the training config (and fingerprint) as before", async () => {
    const implicit = await train("style-default", annealed)
    await train("style-exponential", { ...annealed, wsdDecayStyle: "exponential" })
    metricValues(implicit, "lr").forEach((x, i) => {
      const want = lrAfterSteps(reference("exponential"), i)
      expect(Math.abs(x - want)).toBeLessThanOrEqual(1e-15 * want)
    })
    expect(stateOf(join(work, "style-default", "iter_0000020"))["train"]).not.toHaveProperty("wsdDecayStyle")
    expect(checkpointHashes(join(work, "style-exponential", "iter_0000020"))).toEqual(
      checkpointHashes(join(work, "style-default", "iter_0000020"))
    )
  })

  it("refuses an unknown style, naming the key", async () => {
    const r = await runWorker(["train", "--config", config("style-bad", { ...annealed, wsdDecayStyle: "step" })])
    expect(r.exitCode, r.stderr).toBe(2)
    expect(r.stderr).toMatch(
      /config\.train\.wsdDecayStyle: expected "exponential", "linear", "cosine" or "minus_sqrt", got "step"/
    )
  })
})
