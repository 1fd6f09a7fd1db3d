// Integration tests of the compiled worker (kernels/build/flame-worker): C++ test programs,
// learning on a synthetic corpus, bitwise determinism and resume, eval, trace, params, errors.
import { execa } from "execa"
import { createHash } from "node:crypto"
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { lrAfterSteps } from "../../../src/flame/schedule.ts"
import {
  kernelsDir,
  metricValues,
  resultOf,
  runWorker,
  syntheticCorpus,
  testModel,
  unigramEntropy,
  writeIndexedDataset,
  writeJson
} from "./helpers.ts"

const work = mkdtempSync(join(tmpdir(), "flame-worker-test-"))
const prefix = join(work, "corpus", "synthetic_text_document")
const docs = syntheticCorpus(1500, 64)

const model = testModel
const train = {
  globalBatchSize: 16,
  microBatchSize: 8,
  trainIters: 60,
  saveInterval: 25,
  logInterval: 10,
  lr: 3e-3,
  minLr: 3e-4
}
const config = (name: string, extra: Record<string, unknown> = {}) =>
  writeJson(join(work, `${name}.json`), {
    model,
    train,
    data: { prefix },
    runtime: { threads: 2, outputDir: join(work, name) },
    ...extra
  })

const sha = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex")
const checkpointHashes = (dir: string) =>
  Object.fromEntries(
    ["model.safetensors", "optimizer.safetensors", "state.json"].map((f) => [f, sha(join(dir, f))])
  )

beforeAll(async () => {
  await execa("make", ["-C", kernelsDir, "-j2"])
  writeIndexedDataset(prefix, docs)
})
afterAll(() => rmSync(work, { recursive: true, force: true }))

describe("flame-worker", () => {
  it("passes its C++ test programs (gradient check, kernels vs references, units)", async () => {
    const r = await execa("make", ["-C", kernelsDir, "-j2", "test"], { reject: false, all: true })
    expect(r.exitCode, String(r.all)).toBe(0)
    expect(String(r.all)).toMatch(/0 failures/)
  })

  it("reports version, compiler and flags", async () => {
    const r = await runWorker(["version"])
    const v = JSON.parse(r.stdout) as Record<string, unknown>
    expect(v["worker"]).toBe("flame-worker")
    expect(String(v["compiler"])).toMatch(/^g\+\+ /)
    expect(String(v["flags"])).toContain("-O3")
    expect(v["backends"]).toEqual(["cpu"])
  })

  let trainRun: Awaited<ReturnType<typeof runWorker>>
  it("trains: loss falls well below the unigram entropy, protocol messages are complete", async () => {
    trainRun = await runWorker(["train", "--config", config("run-a")])
    expect(trainRun.exitCode, trainRun.stderr).toBe(0)
    const loss = metricValues(trainRun, "loss")
    expect(loss).toHaveLength(60)
    const h = unigramEntropy(docs)
    const last = loss.slice(-5).reduce((a, b) => a + b, 0) / 5
    expect(loss[0]).toBeGreaterThan(0.9 * Math.log(64))
    expect(last).toBeLessThan(0.5 * h)
    for (const name of ["lr", "grad_norm", "aux_loss", "z_loss", "tokens_per_s"]) {
      expect(metricValues(trainRun, name)).toHaveLength(60)
    }
    // Megatron's WSD: iteration 1 trains with lr 0 (warm-up 0.6 iterations), anneal over the last 6
    const lr = metricValues(trainRun, "lr")
    expect(lr[0]).toBe(0)
    expect(lr[10]).toBeCloseTo(3e-3, 12)
    expect(lr[59]).toBeLessThan(1e-3)
    // Layers are named by Megatron's 1-based number: the dense first layer is layer 1, the MoE layers 2 and 3.
    const metricNames = new Set(trainRun.messages.filter((m) => m.type === "metric").map((m) => m["name"] as string))
    const loadLayers = [...metricNames].flatMap((n) => /^expert_load\/(layer\d+)\/cv$/.exec(n)?.[1] ?? []).sort()
    expect(loadLayers).toEqual(["layer2", "layer3"])
    expect(metricValues(trainRun, "expert_load/layer2/cv").length).toBeGreaterThan(0)
    expect(Object.keys(resultOf(trainRun)["expertLoad"] as object).sort()).toEqual(["layer2", "layer3"])
    const artifacts = trainRun.messages.filter((m) => m.type === "artifact").map((m) => m["path"])
    expect(artifacts).toEqual(["iter_0000025", "iter_0000050", "iter_0000060"])
    const progress = trainRun.messages.filter((m) => m.type === "progress")
    expect(progress.at(-1)).toEqual({ type: "progress", step: 60, total: 60 })
    const result = resultOf(trainRun)
    expect(result["checkpoints"]).toEqual(["iter_0000025", "iter_0000050", "iter_0000060"])
    expect(readdirSync(join(work, "run-a")).sort()).toEqual(["iter_0000025", "iter_0000050", "iter_0000060"])
    const state = JSON.parse(readFileSync(join(work, "run-a", "iter_0000060", "state.json"), "utf8")) as Record<
      string,
      unknown
    >
    expect(state["iteration"]).toBe(60)
    expect(state["consumedSamples"]).toBe(960)
  })

  it("an absolute warm-up (warmupIters) follows Megatron's --lr-warmup-iters, whatever trainIters is", async () => {
    const lrOf = async (name: string, trainIters: number) => {
      const r = await runWorker([
        "train",
        "--config",
        writeJson(join(work, `${name}.json`), {
          model,
          train: { ...train, trainIters, saveInterval: 0, warmupIters: 7 },
          data: { prefix },
          runtime: { threads: 2, outputDir: join(work, name) }
        })
      ])
      expect(r.exitCode, r.stderr).toBe(0)
      return metricValues(r, "lr")
    }
    const short = await lrOf("warmup-iters-20", 20)
    const long = await lrOf("warmup-iters-40", 40)
    // The independent reference: Megatron's get_lr in samples (src/flame/schedule.ts), iteration i
    // training with the lr after i - 1 completed steps.
    const reference = (trainIters: number) => ({
      maxLr: train.lr,
      minLr: train.minLr,
      trainIters,
      globalBatchSize: train.globalBatchSize,
      warmupFraction: 0.01,
      warmupIters: 7,
      wsdIters: Math.floor(trainIters * 0.1),
      decayStyle: "exponential" as const
    })
    short.forEach((lr, i) => expect(lr).toBeCloseTo(lrAfterSteps(reference(20), i), 15))
    long.forEach((lr, i) => expect(lr).toBeCloseTo(lrAfterSteps(reference(40), i), 15))
    expect(short[3]).toBeCloseTo(train.lr * 3 / 7, 15)
    // Both runs agree on every step before the shorter one's anneal (iteration 19 of 20).
    expect(short.slice(0, 18)).toEqual(long.slice(0, 18))
  })

  it("is bitwise deterministic across runs and thread counts, and resumes bit-identically", async () => {
    const b = await runWorker(["train", "--config", config("run-b"), "--threads", "1"])
    expect(b.exitCode, b.stderr).toBe(0)
    expect(metricValues(b, "loss")).toEqual(metricValues(trainRun, "loss"))
    const resumeCfg = config("run-c", {
      runtime: { threads: 2, outputDir: join(work, "run-c"), resumeFrom: join(work, "run-a", "iter_0000025") }
    })
    const c = await runWorker(["train", "--config", resumeCfg])
    expect(c.exitCode, c.stderr).toBe(0)
    // Its own checkpoint: the same state fingerprint, so nothing is said of another schedule.
    const logs = c.messages.filter((m) => m.type === "log").map((m) => String(m["message"]))
    expect(logs).toContain(`resumed from ${join(work, "run-a", "iter_0000025")} at iteration 25`)
    expect(logs.filter((m) => m.includes("agrees"))).toEqual([])
    expect(metricValues(c, "loss")).toEqual(metricValues(trainRun, "loss").slice(25))
    const a60 = checkpointHashes(join(work, "run-a", "iter_0000060"))
    expect(checkpointHashes(join(work, "run-b", "iter_0000060"))).toEqual(a60)
    expect(checkpointHashes(join(work, "run-c", "iter_0000060"))).toEqual(a60)
    expect(checkpointHashes(join(work, "run-c", "iter_0000050"))).toEqual(
      checkpointHashes(join(work, "run-a", "iter_0000050"))
    )
  })

  it("evaluates validation loss and scores log-likelihood requests independently of batching", async () => {
    const reqs = join(work, "requests.jsonl")
    const doc = docs[7] ?? []
    const lines = [
      { id: "follows", context: doc.slice(0, 20), continuation: doc.slice(20, 23) },
      { id: "random", context: doc.slice(0, 20), continuation: [17, 33, 2] },
      { id: "long", context: [...doc, ...doc, ...doc].slice(0, 90), continuation: doc.slice(3, 5) },
      { id: 4, context: [5], continuation: [28] }
    ]
    writeFileSync(reqs, lines.map((l) => JSON.stringify(l)).join("\n") + "\n")
    const cfg = config("eval", { eval: { valSamples: 24, requests: reqs, output: join(work, "ll.jsonl") } })
    const r = await runWorker(["eval", "--config", cfg, "--checkpoint", join(work, "run-a", "iter_0000060")])
    expect(r.exitCode, r.stderr).toBe(0)
    const res = resultOf(r)
    expect(res["loss"] as number).toBeLessThan(0.5 * unigramEntropy(docs))
    expect(res["perplexity"] as number).toBeCloseTo(Math.exp(res["loss"] as number), 6)
    const out = readFileSync(join(work, "ll.jsonl"), "utf8").trim().split("\n").map((l) =>
      JSON.parse(l) as Record<string, unknown>
    )
    expect(out.map((o) => o["id"])).toEqual(["follows", "random", "long", 4])
    expect(out[0]?.["numTokens"]).toBe(3)
    expect(out[0]?.["logprob"] as number).toBeGreaterThan(out[1]?.["logprob"] as number)
    for (const o of out) expect(o["logprob"] as number).toBeLessThan(0)
    // the same request alone (no padding, other batch) scores the same
    writeFileSync(reqs, JSON.stringify(lines[0]) + "\n")
    const alone = await runWorker(["eval", "--config", cfg, "--checkpoint", join(work, "run-a", "iter_0000060")])
    const single = readFileSync(join(work, "ll.jsonl"), "utf8").trim().split("\n").map((l) =>
      JSON.parse(l) as Record<string, unknown>
    )
    expect(alone.exitCode).toBe(0)
    expect(single[0]?.["logprob"] as number).toBeCloseTo(out[0]?.["logprob"] as number, 4)
    expect(single[0]?.["isGreedy"]).toBe(out[0]?.["isGreedy"])
  })

  it("traces router decisions in the documented binary format", async () => {
    const cfg = config("trace", { trace: { numSamples: 3 } })
    const outPath = join(work, "trace.bin")
    const r = await runWorker([
      "trace",
      "--config",
      cfg,
      "--checkpoint",
      join(work, "run-a", "iter_0000060"),
      "--output",
      outPath
    ])
    expect(r.exitCode, r.stderr).toBe(0)
    const b = readFileSync(outPath)
    expect(b.subarray(0, 8).toString("latin1")).toBe("FLMTRACE")
    const [version, layers, k, e, seq, n] = [8, 12, 16, 20, 24, 28].map((o) => b.readUInt32LE(o))
    expect([version, layers, k, e, seq, n]).toEqual([1, 2, 2, 8, 32, 3])
    const tokens = Number(b.readBigUInt64LE(32))
    expect(tokens).toBe(96)
    let o = 40
    // The stored layer ids stay the worker's 0-based indices (Megatron layers 2 and 3).
    expect([b.readUInt32LE(o), b.readUInt32LE(o + 4)]).toEqual([1, 2])
    o += 8 + 8 * 3
    const ids = Array.from({ length: tokens }, (_, i) => b.readInt32LE(o + 4 * i))
    expect(ids.every((t) => t >= 0 && t < 64)).toBe(true)
    o += 4 * tokens
    for (let l = 0; l < 2; l++) {
      const experts = b.subarray(o, o + tokens * 2)
      o += tokens * 2
      for (let t = 0; t < tokens; t++) {
        const p0 = b.readFloatLE(o + 8 * t)
        const p1 = b.readFloatLE(o + 8 * t + 4)
        expect(p0).toBeGreaterThanOrEqual(p1)
        expect(p0 + p1).toBeLessThanOrEqual(1.0001)
        expect(experts[2 * t]).not.toBe(experts[2 * t + 1])
        expect(experts[2 * t] ?? 99).toBeLessThan(8)
      }
      o += tokens * 8
    }
    expect(o).toBe(b.length)
    // the same samples for every checkpoint
    const r2 = await runWorker([
      "trace",
      "--config",
      cfg,
      "--checkpoint",
      join(work, "run-a", "iter_0000025"),
      "--output",
      outPath + "2"
    ])
    expect(r2.exitCode).toBe(0)
    expect(readFileSync(outPath + "2").subarray(0, 64 + 4 * tokens)).toEqual(b.subarray(0, 64 + 4 * tokens))
  })

  it("counts parameters", async () => {
    const cfg = writeJson(join(work, "params.json"), {
      model: {
        hiddenSize: 2048,
        numLayers: 18,
        ffnHiddenSize: 10944,
        moeFfnHiddenSize: 1408,
        moeLayers: "[0]*1+[1]*17"
      }
    })
    const r = await runWorker(["params", "--config", cfg])
    expect(r.exitCode, r.stderr).toBe(0)
    const res = resultOf(r)
    expect(Math.abs((res["activeParams"] as number) / 1.754e9 - 1)).toBeLessThan(0.002)
    expect(Math.abs((res["totalParams"] as number) / 10.28e9 - 1)).toBeLessThan(0.002)
  })

  describe("fails with a clear message and non-zero exit", () => {
    const expectFailure = async (args: Array<string>, code: number, pattern: RegExp) => {
      const r = await runWorker(args)
      expect(r.exitCode, r.stderr).toBe(code)
      expect(r.stderr).toMatch(pattern)
      const err = r.messages.find((m) => m.type === "log" && m["level"] === "error")
      expect(String(err?.["message"])).toMatch(pattern)
    }
    it("on a bad config value", async () => {
      const cfg = writeJson(join(work, "bad.json"), { model: { ...model, hiddenSize: "abc" } })
      await expectFailure(
        ["params", "--config", cfg],
        2,
        /config\.model\.hiddenSize: expected positive integer, got "abc"/
      )
    })
    it("on an unknown key", async () => {
      const cfg = writeJson(join(work, "bad2.json"), { model, train: { ...train, learningRate: 1 } })
      await expectFailure(["train", "--config", cfg], 2, /config\.train\.learningRate: unknown key/)
    })
    it("on a missing config file", async () => {
      await expectFailure(["params", "--config", join(work, "nope.json")], 2, /cannot open/)
    })
    it("on missing and corrupt data files", async () => {
      const missing = writeJson(join(work, "missing.json"), { model, train, data: { prefix: join(work, "nothing") } })
      await expectFailure(["train", "--config", missing], 3, /cannot open dataset index/)
      const bad = join(work, "corrupt", "c")
      writeIndexedDataset(bad, docs.slice(0, 50))
      writeFileSync(bad + ".bin", readFileSync(bad + ".bin").subarray(0, 100))
      const cfg = writeJson(join(work, "corrupt.json"), { model, train, data: { prefix: bad } })
      await expectFailure(["train", "--config", cfg], 3, /corrupt dataset data/)
    })
    it("on tokens outside the vocabulary", async () => {
      const cfg = writeJson(join(work, "vocab.json"), { model: { ...model, vocabSize: 32 }, train, data: { prefix } })
      await expectFailure(["train", "--config", cfg], 3, /outside the vocabulary/)
    })
    it("on a checkpoint that does not match the config", async () => {
      const cfg = writeJson(join(work, "mismatch.json"), { model: { ...model, hiddenSize: 32 }, data: { prefix } })
      await expectFailure(
        ["eval", "--config", cfg, "--checkpoint", join(work, "run-a", "iter_0000060")],
        4,
        /does not match the model config: model\.hiddenSize is 64 in the checkpoint but 32/
      )
      const resume = config("resume-bad", {
        train: { ...train, lr: 1e-3 },
        runtime: { outputDir: join(work, "resume-bad"), resumeFrom: join(work, "run-a", "iter_0000025") }
      })
      // The schedule's keys are not compared as such: the rates up to the checkpoint are (the warm-up
      // of 0.6 iterations is over at iteration 2).
      await expectFailure(
        ["train", "--config", resume],
        4,
        /cannot resume: training config differs: the learning rate differs at iteration 2: 0\.003 in the checkpoint's schedule, 0\.001 in the config's/
      )
      const other = config("resume-bad-wd", {
        train: { ...train, weightDecay: 0.1 },
        runtime: { outputDir: join(work, "resume-bad-wd"), resumeFrom: join(work, "run-a", "iter_0000025") }
      })
      await expectFailure(
        ["train", "--config", other],
        4,
        /cannot resume: training config differs: train\.weightDecay is 0\.01 in the checkpoint but 0\.1 in the config/
      )
    })
    it("on a corrupt or incomplete checkpoint", async () => {
      const src = join(work, "run-a", "iter_0000060")
      const dst = join(work, "broken", "iter_0000060")
      cpSync(src, dst, { recursive: true })
      const buf = readFileSync(join(dst, "model.safetensors"))
      buf[buf.length - 3] = (buf[buf.length - 3] ?? 0) ^ 0xff
      writeFileSync(join(dst, "model.safetensors"), buf)
      await expectFailure(
        ["eval", "--config", config("x", { eval: { valSamples: 2 } }), "--checkpoint", dst],
        4,
        /model\.safetensors is corrupt/
      )
      rmSync(join(dst, "state.json"))
      await expectFailure(
        ["eval", "--config", config("x", { eval: { valSamples: 2 } }), "--checkpoint", dst],
        4,
        /state\.json missing/
      )
      expect(existsSync(join(src, "state.json"))).toBe(true)
    })
  })
})
