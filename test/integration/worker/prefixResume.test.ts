// Resuming under another learning-rate schedule (kernels/src/checkpoint.h): a run that branches
// off another one's checkpoint (e.g. to anneal early) reproduces the branch trained from scratch
// bit for bit, and is refused wherever the two runs would not have passed through the same state.
// A checkpoint (state.json version 2) describes its state and nothing of the run's future, so two
// runs that agree up to a checkpoint write the same bytes there; version 1 checkpoints, which
// record their run's whole training config, keep the rule they were written under.
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
  testModel,
  writeIndexedDataset,
  writeJson
} from "./helpers.ts"

const work = mkdtempSync(join(tmpdir(), "flame-worker-prefix-"))
const prefix = join(work, "corpus", "synthetic_text_document")
const docs = syntheticCorpus(1500, 64)

const model = testModel
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

// The worker's compact JSON (kernels/src/io/json.cpp), which its fingerprints hash: object keys in
// their order, integral numbers as integers, others in the shortest of C's %.9g .. %.17g that reads
// back exactly ("1e-06", where JSON.stringify writes "0.000001"). Checked against state.json itself.
const cNumber = (v: number): string => {
  if (Number.isInteger(v) && Math.abs(v) < 9.007199254740992e15) return v.toFixed(0)
  const g = (p: number) => {
    const [mantissa = "", exp = "0"] = v.toExponential(p - 1).split("e")
    const x = Number(exp)
    const trim = (t: string) => (t.includes(".") ? t.replace(/0+$/, "").replace(/\.$/, "") : t)
    if (x < -4 || x >= p) return `${trim(mantissa)}e${x < 0 ? "-" : "+"}${String(Math.abs(x)).padStart(2, "0")}`
    return trim(v.toFixed(p - 1 - x))
  }
  for (let p = 9; p < 17; p++) if (Number(g(p)) === v) return g(p)
  return g(17)
}
const cJson = (v: unknown): string => {
  if (v === null) return "null"
  if (typeof v === "number") return cNumber(v)
  if (typeof v === "string" || typeof v === "boolean") return JSON.stringify(v)
  if (Array.isArray(v)) return `[${v.map(cJson).join(",")}]`
  return `{${Object.entries(v as object).map(([k, x]) => `${JSON.stringify(k)}:${cJson(x)}`).join(",")}}`
}
const sha256 = (text: string) => createHash("sha256").update(text).digest("hex")

// The schedule keys of the training config, which a version 2 checkpoint leaves out of "train".
const scheduleKeys = ["trainIters", "lr", "minLr", "warmupFraction", "warmupIters", "wsdIters", "wsdDecayStyle"]

// Rewrites a checkpoint of the constant run as a version 1 checkpoint of it, as the worker wrote
// them before: the run's whole training config (Config::trainJson(), schedule keys included, in
// its key order) and trainFingerprint = sha256 of {model, train}; no schedule, no stateFingerprint.
// Without withDataOrder, one written before dataOrder was recorded.
const asVersion1 = (src: string, dst: string, withDataOrder: boolean) => {
  cpSync(src, dst, { recursive: true })
  const s = stateOf(dst)
  const { globalBatchSize, microBatchSize, ...rest } = s["train"] as Record<string, unknown>
  const v1Train = {
    globalBatchSize,
    microBatchSize,
    trainIters: constant.trainIters,
    lr: constant.lr,
    minLr: constant.minLr,
    warmupFraction: 0.01,
    warmupIters: constant.warmupIters,
    wsdIters: constant.wsdIters,
    ...rest
  }
  const v1 = {
    format: s["format"],
    version: 1,
    iteration: s["iteration"],
    consumedSamples: s["consumedSamples"],
    adamStep: s["adamStep"],
    rng: s["rng"],
    modelFingerprint: s["modelFingerprint"],
    trainFingerprint: sha256(cJson({ model: s["model"], train: v1Train })),
    model: s["model"],
    train: v1Train,
    data: s["data"],
    ...(withDataOrder ? { dataOrder: s["dataOrder"] } : {}),
    files: s["files"]
  }
  writeFileSync(join(dst, "state.json"), cJson(v1) + "\n")
  return dst
}

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
    const lr = metricValues(constantRun, "lr")
    expect(lr.slice(0, 3)).toEqual([0, 1e-3, 2e-3])
    expect(lr[3]).toBeCloseTo(3e-3, 15) // the end of the warm-up, 3e-3 * 3 / 3
    expect(lr.slice(4).every((x) => x === 3e-3)).toBe(true)
  })

  it("state.json (version 2) describes the state: the rates so far, not the schedule's settings", async () => {
    const dir = join(work, "constant", "iter_0000018")
    const text = readFileSync(join(dir, "state.json"), "utf8")
    const state = JSON.parse(text) as Record<string, unknown>
    expect(state["version"]).toBe(2)
    expect(state).not.toHaveProperty("trainFingerprint")
    // "train" holds what besides the rates determines the state; none of the schedule's keys.
    for (const k of scheduleKeys) expect(state["train"]).not.toHaveProperty(k)
    expect(state["train"]).toMatchObject({ globalBatchSize: 16, microBatchSize: 8, seed: 1234, dataSeed: 1234 })
    // Iterations 1..18 train with the lrs after 0..17 steps: the warm-up's (n = 0..3, listed as the
    // run used them), then the peak. No anneal has begun, and nothing says when one would.
    const lr = metricValues(constantRun, "lr")
    expect(state["schedule"]).toEqual({ warmupRates: lr.slice(0, 4), peak: 3e-3 })
    expect(stateOf(join(work, "constant", "iter_0000030"))["schedule"]).toEqual(state["schedule"])
    // The fingerprints hash the worker's compact JSON of their sections; this transcription of it
    // reproduces the file byte for byte, and the model fingerprint, before it is trusted below.
    expect(cJson(state) + "\n").toBe(text)
    expect(state["modelFingerprint"]).toBe(sha256(cJson(state["model"])))
    expect(state["stateFingerprint"]).toBe(
      sha256(
        cJson({
          model: state["model"],
          train: state["train"],
          schedule: state["schedule"],
          dataOrder: state["dataOrder"]
        })
      )
    )
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
    // saveIters changes no state: the scratch branch also writes the checkpoint it passes at 18.
    const scratch = await train("branch-scratch", { ...branch, saveIters: [18] })
    const resumed = await train("branch-resumed", branch, resumeFrom(join(work, "constant", "iter_0000018")))
    // The training configs differ in the schedule only, and both runs read one epoch in the same
    // order; up to iteration 18 their rates are the same and so is their description (the branch's
    // anneal begins at step 18, iteration 19): the checkpoint is the branch's own, every byte of it.
    expect(checkpointHashes(join(work, "constant", "iter_0000018"))).toEqual(
      checkpointHashes(join(work, "branch-scratch", "iter_0000018"))
    )
    // The same state fingerprint, so the worker says nothing of another schedule.
    expect(logMessages(resumed)).toContain(`resumed from ${join(work, "constant", "iter_0000018")} at iteration 18`)
    expect(logMessages(resumed).filter((m) => m.includes("agrees"))).toEqual([])
    const c18 = stateOf(join(work, "constant", "iter_0000018"))
    const s20 = stateOf(join(work, "branch-scratch", "iter_0000020"))
    expect(c18["dataOrder"]).toEqual([{ epochs: 1, separateFinalEpoch: false }])
    expect(s20["dataOrder"]).toEqual(c18["dataOrder"])
    // The branch's final checkpoint describes the anneal it has begun; the constant run's does not.
    expect(s20["stateFingerprint"]).not.toBe(stateOf(join(work, "constant", "iter_0000020"))["stateFingerprint"])
    expect((s20["schedule"] as Record<string, unknown>)["anneal"]).toEqual({
      start: 18,
      length: 2,
      maxLr: 3e-3,
      minLr: 1e-4,
      style: "exponential"
    })
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
        /cannot resume: training config differs: the learning rate differs at iteration 2: 0\.001 in the checkpoint's schedule, 0\.000666666\d* in the config's$/m
      )
    })
    it("a branch whose warm-up differs", async () => {
      await expectRefusal(
        "refuse-warmup",
        { ...branch, warmupIters: 4 },
        at18(),
        /cannot resume: training config differs: the learning rate differs at iteration 2: 0\.001 in the checkpoint's schedule, 0\.00075 in the config's$/m
      )
      // A fractional warm-up: 0.1 * 20 = 2 iterations against the checkpoint's 3.
      const { warmupIters: _, ...fractional } = branch
      await expectRefusal(
        "refuse-warmup-fraction",
        { ...fractional, warmupFraction: 0.1 },
        at18(),
        /cannot resume: training config differs: the learning rate differs at iteration 2: 0\.001 in the checkpoint's schedule, 0\.0015 in the config's$/m
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
        /cannot resume: training config differs: the learning rate differs at iteration 20: 0\.003 in the checkpoint's schedule, 0\.0013\d* in the config's$/m
      )
      await expectRefusal(
        "refuse-past-end",
        branch,
        resumeFrom(join(work, "constant", "iter_0000025")),
        /iter_0000025: iteration 25 is beyond trainIters/
      )
    })
    it("a version 2 checkpoint without a recorded data order, even under its own config", async () => {
      // Nothing would show that the samples before it are the ones the new run reads.
      const noOrder = join(work, "no-order", "iter_0000018")
      cpSync(join(work, "constant", "iter_0000018"), noOrder, { recursive: true })
      const { dataOrder: _, ...state } = stateOf(noOrder)
      writeFileSync(join(noOrder, "state.json"), JSON.stringify(state) + "\n")
      for (const [name, t] of [["refuse-no-order", branch], ["refuse-no-order-own", constant]] as const) {
        await expectRefusal(
          name,
          t,
          resumeFrom(noOrder),
          /checkpoint \S+no-order\/iter_0000018: state\.json lacks its train, schedule or dataOrder section$/m
        )
      }
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
        /cannot resume: training config differs: the checkpoint was trained on a different data order \(epochs \[2\] vs \[1\]\)$/m
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
      // splitSamples.train sets the order, so it is part of "train" (dataTrainSamples) where given.
      await expectRefusal(
        "refuse-train-samples-absent-in-config",
        branch,
        { ...data, ...resumeFrom(join(work, "small-constant-fixed", "iter_0000018")) },
        /cannot resume: training config differs: train\.dataTrainSamples is 480 in the checkpoint but absent in the config$/m
      )
      await expectRefusal(
        "refuse-train-samples-absent-in-checkpoint",
        branch,
        { ...fixed, ...resumeFrom(join(work, "small-constant", "iter_0000018")) },
        /cannot resume: training config differs: train\.dataTrainSamples is absent in the checkpoint but 480 in the config$/m
      )
    })
  })

  describe("a version 1 checkpoint (the whole training config, trainFingerprint) keeps its old rule", () => {
    const v1 = (name: string, withDataOrder: boolean) =>
      asVersion1(join(work, "constant", "iter_0000018"), join(work, name, "iter_0000018"), withDataOrder)

    it("resumes under its own config (equal trainFingerprint), with or without a data order", async () => {
      for (const withDataOrder of [true, false]) {
        const name = withDataOrder ? "v1" : "v1-no-order"
        const from = v1(name, withDataOrder)
        const resumed = await train(`${name}-own`, constant, resumeFrom(from))
        expect(logMessages(resumed)).toContain(`resumed from ${from} at iteration 18`)
        expect(logMessages(resumed).filter((m) => m.includes("agrees"))).toEqual([])
        expect(metricValues(resumed, "loss")).toEqual(metricValues(constantRun, "loss").slice(18))
        // What it writes is version 2, the constant run's own bytes.
        expect(resultOf(resumed)["checkpoints"]).toEqual(["iter_0000020", "iter_0000025", "iter_0000030"])
        for (const it of ["iter_0000020", "iter_0000025", "iter_0000030"]) {
          expect(checkpointHashes(join(work, `${name}-own`, it))).toEqual(checkpointHashes(join(work, "constant", it)))
        }
      }
    })

    it("resumes under another config only where the old rule accepts it, with its old messages", async () => {
      const from = v1("v1-branch", true)
      // The trainFingerprints differ: the schedule rule applies and says so.
      const resumed = await train("v1-branch-resumed", branch, resumeFrom(from))
      expect(logMessages(resumed)).toContain(
        `resumed from ${from} at iteration 18: its schedule agrees with this one up to iteration 18`
      )
      expect(checkpointHashes(join(work, "v1-branch-resumed", "iter_0000020"))).toEqual(
        checkpointHashes(join(work, "branch-scratch", "iter_0000020"))
      )
      await expectRefusal(
        "refuse-v1-lr",
        { ...branch, lr: 2e-3 },
        resumeFrom(from),
        /cannot resume: training config differs: train\.trainIters is 30 in the checkpoint but 20 in the config, and the learning rate differs at iteration 2: 0\.001 in the checkpoint's schedule, 0\.000666666\d* in the config's$/m
      )
      await expectRefusal(
        "refuse-v1-seed",
        { ...branch, seed: 1 },
        resumeFrom(from),
        /cannot resume: training config differs: train\.seed is 1234 in the checkpoint but 1 in the config$/m
      )
      // Without a recorded data order only its own config resumes it: the first differing key.
      await expectRefusal(
        "refuse-v1-no-order",
        branch,
        resumeFrom(v1("v1-branch-no-order", false)),
        /cannot resume: training config differs: train\.trainIters is 30 in the checkpoint but 20 in the config$/m
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
      // The final checkpoint is inside the anneal: its description names the style; "train" does not.
      const state = stateOf(join(work, `style-${style}`, "iter_0000020"))
      expect(state["schedule"]).toHaveProperty("anneal.style", style)
      expect(state["train"]).not.toHaveProperty("wsdDecayStyle")
      seen.push(lr)
    }
    // The styles are different curves over the anneal.
    expect(new Set(seen.map((lr) => lr[13])).size).toBe(3) // r = 0.3 (linear and cosine meet at 0.5)
  })

  it("exponential is the default: given or not, the same checkpoint", async () => {
    const implicit = await train("style-default", annealed)
    await train("style-exponential", { ...annealed, wsdDecayStyle: "exponential" })
    metricValues(implicit, "lr").forEach((x, i) => {
      const want = lrAfterSteps(reference("exponential"), i)
      expect(Math.abs(x - want)).toBeLessThanOrEqual(1e-15 * want)
    })
    expect(stateOf(join(work, "style-default", "iter_0000020"))["schedule"]).toHaveProperty(
      "anneal.style",
      "exponential"
    )
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
