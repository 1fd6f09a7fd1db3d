// Backend selection of the worker where no GPU can be used (CI has none; CUDA_VISIBLE_DEVICES=""
// hides one elsewhere): `cuda` is refused with the reason and exit code 2, whether or not
// flame-worker-cuda is built (the CPU binary hands cuda runs to it when it is); `auto` trains on
// the CPU with the same bytes as `cpu`. The CUDA kernels themselves are tested on a GPU by
// `npm run test:gpu` (test/gpu/), and on the CPU emulation by cuda-emulation.test.ts.
import { execa } from "execa"
import { createHash } from "node:crypto"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { kernelsDir, syntheticCorpus, workerPath, writeIndexedDataset, writeJson } from "./helpers.ts"

const work = mkdtempSync(join(tmpdir(), "flame-worker-backend-"))
const prefix = join(work, "corpus", "synthetic_text_document")
const cudaWorker = join(kernelsDir, "build", "flame-worker-cuda")

const config = (name: string, runtime: Record<string, unknown>) =>
  writeJson(join(work, `${name}.json`), {
    model: {
      vocabSize: 32,
      hiddenSize: 32,
      numLayers: 2,
      numAttentionHeads: 4,
      ffnHiddenSize: 64,
      moeFfnHiddenSize: 16,
      numExperts: 4,
      topK: 2,
      seqLength: 16
    },
    train: { globalBatchSize: 4, microBatchSize: 2, trainIters: 2 },
    data: { prefix },
    runtime: { threads: 1, outputDir: join(work, name), ...runtime }
  })

const run = (binary: string, args: ReadonlyArray<string>) =>
  execa(binary, args, { reject: false, env: { CUDA_VISIBLE_DEVICES: "", OMP_NUM_THREADS: "1" } })

const sha = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex")

beforeAll(() => writeIndexedDataset(prefix, syntheticCorpus(200, 32)))
afterAll(() => rmSync(work, { recursive: true, force: true }))

describe("worker backend selection without a usable GPU", () => {
  it("refuses cuda with the reason and exit code 2", async () => {
    const r = await run(workerPath, ["train", "--config", config("cuda", { backend: "cuda" })])
    expect(r.exitCode).toBe(2)
    expect(r.stderr).toMatch(/flame-worker: error: config\.runtime\.backend: "cuda" cannot run: \S/)
    const viaFlag = await run(workerPath, ["train", "--config", config("flag", {}), "--backend", "cuda"])
    expect(viaFlag.exitCode).toBe(2)
    expect(viaFlag.stderr).toMatch(/config\.runtime\.backend: "cuda" cannot run/)
  })

  it("runs auto on the CPU, bitwise as cpu", async () => {
    const cpu = await run(workerPath, ["train", "--config", config("cpu", { backend: "cpu" })])
    const auto = await run(workerPath, ["train", "--config", config("auto", { backend: "auto" })])
    expect(cpu.exitCode, cpu.stderr).toBe(0)
    expect(auto.exitCode, auto.stderr).toBe(0)
    expect(auto.stdout).toMatch(/runtime\.backend auto: using the CPU/)
    for (const f of ["model.safetensors", "optimizer.safetensors"]) {
      expect(sha(join(work, "auto", "iter_0000002", f))).toBe(sha(join(work, "cpu", "iter_0000002", f)))
    }
  })

  it("rejects unknown backend, precision and attention values", async () => {
    const bad = [
      [{ backend: "tpu" }, /config\.runtime\.backend: expected "cpu", "cuda" or "auto", got "tpu"/],
      [{ precision: "fp16" }, /config\.runtime\.precision: expected "bf16" or "fp32"/],
      [{ attention: "fast" }, /config\.runtime\.attention: expected "flash" or "plain"/]
    ] as const
    for (const [runtime, message] of bad) {
      const r = await run(workerPath, ["train", "--config", config("bad", runtime)])
      expect(r.exitCode).toBe(2)
      expect(r.stderr).toMatch(message)
    }
    const flag = await run(workerPath, ["train", "--config", config("bad", {}), "--backend", "gpu"])
    expect(flag.exitCode).toBe(2)
    expect(flag.stderr).toMatch(/option --backend: expected cpu, cuda or auto, got "gpu"/)
  })

  it.runIf(existsSync(cudaWorker))(
    "flame-worker-cuda reports its backends and refuses cuda without a GPU",
    async () => {
      const v = await run(cudaWorker, ["version"])
      expect(v.exitCode).toBe(0)
      const info = JSON.parse(v.stdout) as { backends: Array<string>; cuda: { archs: string } }
      expect(info.backends).toEqual(["cpu", "cuda"])
      expect(info.cuda.archs).toMatch(/80/)
      const r = await run(cudaWorker, ["train", "--config", config("cuda2", { backend: "cuda" })])
      expect(r.exitCode).toBe(2)
      expect(r.stderr).toMatch(
        /config\.runtime\.backend: "cuda" cannot run: (no NVIDIA driver|no CUDA device|no usable CUDA device)/
      )
    }
  )
})
