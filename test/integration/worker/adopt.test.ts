// `flame-worker adopt`: a checkpoint of another run that the config's run passes through (the rule
// of resuming, kernels/src/checkpoint.h) is written as that run's own checkpoint — every file byte
// for byte what the run trained from scratch writes at that iteration — and refused, as resuming
// from it is, where it is not such a state. A checkpoint describes its state and nothing of the
// run's future, so where two runs agree up to it, it is already the other run's own, bytes and all.
import { execa } from "execa"
import { createHash } from "node:crypto"
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
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

const work = mkdtempSync(join(tmpdir(), "flame-worker-adopt-"))
const prefix = join(work, "corpus", "synthetic_text_document")

const model = testModel
// Both runs read the train split built for the longer one (24 * 16 samples): the same order.
const data = { prefix, splitSamples: { train: 384, valid: 16, test: 16 } }
const base = { globalBatchSize: 16, microBatchSize: 8, logInterval: 10, lr: 3e-3, minLr: 3e-4, saveInterval: 6 }
// 2 warm-up iterations, then a constant rate to iteration 24.
const constant = { ...base, trainIters: 24, warmupIters: 2, wsdIters: 0 }
// The same warm-up, annealed over its last 2 iterations towards another minLr: its lrs equal the
// constant run's up to iteration 18.
const branch = { ...base, trainIters: 20, warmupIters: 2, wsdIters: 2, minLr: 1e-4 }

const config = (name: string, train: Record<string, unknown>, runtime: Record<string, unknown> = {}) =>
  writeJson(join(work, `${name}.json`), {
    model,
    train,
    data,
    runtime: { threads: 2, outputDir: join(work, name), ...runtime }
  })
const train = async (name: string, t: Record<string, unknown>, runtime: Record<string, unknown> = {}) => {
  const r = await runWorker(["train", "--config", config(name, t, runtime)])
  expect(r.exitCode, r.stderr).toBe(0)
  return r
}
const adopt = (name: string, t: Record<string, unknown>, from: string, out: string) =>
  runWorker(["adopt", "--config", config(name, t), "--from", from, "--out", out])

const checkpoint = (run: string, iteration: number) => join(work, run, `iter_${String(iteration).padStart(7, "0")}`)
const filesOf = (dir: string) =>
  Object.fromEntries(readdirSync(dir).sort().map((f) => [f, readFileSync(join(dir, f)).toString("base64")]))
const stateOf = (dir: string) => JSON.parse(readFileSync(join(dir, "state.json"), "utf8")) as Record<string, unknown>
const logMessages = (r: WorkerRun) => r.messages.filter((m) => m.type === "log").map((m) => String(m["message"]))

// Rewrites a safetensors file with one more metadata entry: the same tensors and data, another
// header (so not the bytes the worker writes); the caller re-records its hash in state.json.
const addMetadata = (path: string) => {
  const bytes = readFileSync(path)
  const n = Number(bytes.readBigUInt64LE(0))
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString("utf8")) as Record<string, Record<string, unknown>>
  header["__metadata__"] = { ...header["__metadata__"], note: "re-saved elsewhere" }
  let text = JSON.stringify(header)
  while (text.length % 8 !== 0) text += " "
  const len = Buffer.alloc(8)
  len.writeBigUInt64LE(BigInt(text.length))
  writeFileSync(path, Buffer.concat([len, Buffer.from(text, "utf8"), bytes.subarray(8 + n)]))
}

beforeAll(async () => {
  await execa("make", ["-C", kernelsDir, "-j2"])
  writeIndexedDataset(prefix, syntheticCorpus(1500, 64))
})
afterAll(() => rmSync(work, { recursive: true, force: true }))

describe("flame-worker adopt", () => {
  beforeAll(async () => {
    await train("constant", constant)
    await train("branch", branch)
  }, 300_000)

  it("the constant run and the branch write the same checkpoints up to the branch's anneal", async () => {
    // Their configs differ in the schedule only (trainIters, wsdIters, minLr), and their rates agree
    // up to iteration 19: every file of checkpoints 6, 12 and 18, state.json included, is the same.
    for (const it of [6, 12, 18]) {
      expect(readdirSync(checkpoint("constant", it)).sort()).toEqual([
        "model.safetensors",
        "optimizer.safetensors",
        "state.json"
      ])
      expect(filesOf(checkpoint("constant", it))).toEqual(filesOf(checkpoint("branch", it)))
    }
    // Before the anneal the description ends with the peak; nothing in it says an anneal will come.
    const before = stateOf(checkpoint("branch", 18))
    expect(before["version"]).toBe(2)
    expect(before["schedule"]).toEqual({ warmupRates: [0, 1.5e-3, 3e-3], peak: 3e-3 })
    // Iteration 20 trains with the lr after 19 steps, past the anneal's start (18): the branch's
    // final checkpoint describes the anneal, the constant run's (no anneal) does not.
    const schedule = stateOf(checkpoint("branch", 20))["schedule"] as Record<string, unknown>
    expect(schedule["anneal"]).toEqual({ start: 18, length: 2, maxLr: 3e-3, minLr: 1e-4, style: "exponential" })
    expect(stateOf(checkpoint("constant", 24))["schedule"]).not.toHaveProperty("anneal")
  })

  it("writes the constant run's checkpoints as the branch's own, byte for byte", async () => {
    for (const it of [6, 12, 18]) {
      const from = checkpoint("constant", it)
      const r = await adopt("adopt-branch", branch, from, join(work, "adopted"))
      expect(r.exitCode, r.stderr).toBe(0)
      const name = `iter_${String(it).padStart(7, "0")}`
      expect(resultOf(r)).toEqual({ checkpoint: name, iteration: it })
      // The same state fingerprint: nothing to say of another schedule.
      expect(logMessages(r)).toContain(
        `adopted ${from} at iteration ${it} as ${join(work, "adopted", name)} ` +
          `(model.safetensors linked, optimizer.safetensors linked)`
      )
      // What it writes equals its source, which is already the branch's own checkpoint.
      expect(filesOf(join(work, "adopted", name))).toEqual(filesOf(from))
      expect(filesOf(join(work, "adopted", name))).toEqual(filesOf(checkpoint("branch", it)))
      // The tensor files are the constant run's own, not copies.
      for (const f of ["model.safetensors", "optimizer.safetensors"]) {
        expect(statSync(join(work, "adopted", name, f)).ino).toBe(statSync(join(from, f)).ino)
      }
    }
    // Atomically written: no temporary directories are left behind.
    expect(readdirSync(join(work, "adopted")).sort()).toEqual(["iter_0000006", "iter_0000012", "iter_0000018"])
  })

  it("the adopted checkpoint resumes as the branch's own (same fingerprint)", async () => {
    const scratch = await train("branch-again", { ...branch, saveInterval: 0 })
    const resumed = await train("branch-resumed", { ...branch, saveInterval: 0 }, {
      resumeFrom: join(work, "adopted", "iter_0000018")
    })
    expect(logMessages(resumed)).toContain(`resumed from ${join(work, "adopted", "iter_0000018")} at iteration 18`)
    expect(metricValues(resumed, "loss")).toEqual(metricValues(scratch, "loss").slice(18))
    expect(filesOf(checkpoint("branch-resumed", 20))).toEqual(filesOf(checkpoint("branch", 20)))
  })

  it("adopts a checkpoint whose description differs but whose rates agree, saying so", async () => {
    // A 2-iteration anneal reaches r = 1/2 at the last iteration's step, where the linear and the
    // cosine curves meet (1 - 1/2 = (cos(pi/2) + 1) / 2 in doubles): every rate agrees, but the
    // description names another style, so the state fingerprints differ.
    const linear = { ...base, trainIters: 8, warmupIters: 2, wsdIters: 2, wsdDecayStyle: "linear", saveInterval: 0 }
    const cosine = { ...linear, wsdDecayStyle: "cosine" }
    const l = await train("linear", linear)
    const c = await train("cosine", cosine)
    expect(metricValues(l, "lr")).toEqual(metricValues(c, "lr"))
    expect(metricValues(l, "lr")[7]).toBeLessThan(3e-3)
    const from = checkpoint("linear", 8)
    expect(stateOf(from)["schedule"]).toHaveProperty("anneal.style", "linear")
    expect(stateOf(from)["stateFingerprint"]).not.toBe(stateOf(checkpoint("cosine", 8))["stateFingerprint"])
    const r = await adopt("adopt-cosine", cosine, from, join(work, "adopted-cosine"))
    expect(r.exitCode, r.stderr).toBe(0)
    expect(logMessages(r)).toContain(
      `adopted ${from} at iteration 8 as ${join(work, "adopted-cosine", "iter_0000008")}: its schedule agrees ` +
        `with this one up to iteration 8 (model.safetensors linked, optimizer.safetensors linked)`
    )
    // Written as the cosine run's own: the same tensors, its own description.
    const adopted = join(work, "adopted-cosine", "iter_0000008")
    expect(filesOf(adopted)).toEqual(filesOf(checkpoint("cosine", 8)))
    expect(readFileSync(join(adopted, "state.json"))).not.toEqual(readFileSync(join(from, "state.json")))
  })

  it("writes tensor files whose bytes are not the worker's own instead of linking them", async () => {
    // A checkpoint holding the same tensors in a file with another header: the tensors load the
    // same, but linking would not give the branch's bytes.
    const from = join(work, "resaved", "iter_0000012")
    cpSync(checkpoint("constant", 12), from, { recursive: true })
    addMetadata(join(from, "model.safetensors"))
    const state = stateOf(from)
    const files = state["files"] as Record<string, string>
    files["model.safetensors"] = createHash("sha256").update(readFileSync(join(from, "model.safetensors"))).digest(
      "hex"
    )
    writeFileSync(join(from, "state.json"), JSON.stringify(state) + "\n")
    const r = await adopt("adopt-resaved", branch, from, join(work, "adopted-resaved"))
    expect(r.exitCode, r.stderr).toBe(0)
    expect(logMessages(r).at(-1)).toMatch(/\(model\.safetensors written, optimizer\.safetensors linked\)$/)
    expect(filesOf(join(work, "adopted-resaved", "iter_0000012"))).toEqual(filesOf(checkpoint("branch", 12)))
  })

  describe("refuses as resuming does, naming the reason", () => {
    const expectRefusal = async (name: string, t: Record<string, unknown>, from: string, pattern: RegExp) => {
      const out = join(work, `${name}-out`)
      const r = await adopt(name, t, from, out)
      expect(r.exitCode, r.stderr).toBe(4)
      expect(r.stderr).toMatch(pattern)
      const err = r.messages.find((m) => m.type === "log" && m["level"] === "error")
      expect(String(err?.["message"])).toMatch(pattern)
      expect(r.messages.some((m) => m.type === "result")).toBe(false)
      expect(existsSync(out)).toBe(false)
      // The same checkpoint and config, resumed: the same refusal.
      const resumed = await runWorker(["train", "--config", config(`${name}-train`, t, { resumeFrom: from })])
      expect(resumed.exitCode, resumed.stderr).toBe(4)
      expect(resumed.stderr).toMatch(pattern)
    }

    it("a checkpoint of a run with another init seed", async () => {
      await expectRefusal(
        "refuse-seed",
        { ...branch, seed: 1 },
        checkpoint("constant", 6),
        /cannot resume: training config differs: train\.seed is 1234 in the checkpoint but 1 in the config$/m
      )
    })

    it("a checkpoint beyond the config's trainIters", async () => {
      await expectRefusal(
        "refuse-beyond",
        branch,
        checkpoint("constant", 24),
        /checkpoint \S+iter_0000024: iteration 24 is beyond trainIters/
      )
    })

    it("a checkpoint of a run whose lr differs", async () => {
      await expectRefusal(
        "refuse-lr",
        { ...branch, lr: 2e-3 },
        checkpoint("constant", 6),
        /cannot resume: training config differs: the learning rate differs at iteration 2: 0\.0015 in the checkpoint's schedule, 0\.001 in the config's$/m
      )
    })

    it("without --from or --out", async () => {
      const c = config("usage", branch)
      const noFrom = await runWorker(["adopt", "--config", c, "--out", join(work, "x")])
      expect(noFrom.exitCode).toBe(2)
      expect(noFrom.stderr).toMatch(/adopt: --from CKPT is required/)
      const noOut = await runWorker(["adopt", "--config", c, "--from", checkpoint("constant", 6)])
      expect(noOut.exitCode).toBe(2)
      expect(noOut.stderr).toMatch(/adopt: --out DIR is required/)
    })
  })
})
