// Megatron checkpoint import against the worker: a model trained by the worker is written in
// Megatron's formats by scripts/megatron/write_checkpoint.py (Debian's torch, following torch 2.x's
// and Megatron-core's on-disk format), imported back by src/megatron/import, and must evaluate and
// trace exactly as the original (fp32 storage: bitwise; bf16: the original rounded to bf16).
// Then the bad inputs: each fails naming checkpoint, file and tensor, and writes nothing.
import { execa } from "execa"
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync
} from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { importMegatronCheckpoint, readCheckpointModel } from "../../../src/megatron/import/importCheckpoint.ts"
import { pythonWith } from "../../support/python.ts"
import { repoRoot, resultOf, runWorker, syntheticCorpus, writeIndexedDataset, writeJson } from "../worker/helpers.ts"

const work = mkdtempSync(join(tmpdir(), "flame-megatron-import-"))
const prefix = join(work, "corpus", "synthetic_text_document")
const generator = join(repoRoot, "scripts", "megatron", "write_checkpoint.py")

// FLAME-MoE's structure, small: a dense first layer, MoE layers with a shared expert.
const model = {
  vocabSize: 64,
  hiddenSize: 32,
  numLayers: 3,
  numAttentionHeads: 4,
  ffnHiddenSize: 48,
  moeFfnHiddenSize: 16,
  numExperts: 8,
  topK: 2,
  sharedExpertSize: 32,
  moeLayers: "[0]*1+[1]*2",
  seqLength: 32
}
const original = join(work, "trained", "iter_0000020")
let python = ""

const workerConfig = (name: string, extra: Record<string, unknown>) =>
  writeJson(join(work, `${name}.json`), {
    model,
    data: { prefix },
    runtime: { threads: 2, outputDir: join(work, name) },
    ...extra
  })

const fingerprint = async (): Promise<string> => {
  return resultOf(await runWorker(["params", "--config", workerConfig("params", {})])).modelFingerprint as string
}

const megatron = async (name: string, options: ReadonlyArray<string>): Promise<string> => {
  const out = join(work, "megatron", name)
  rmSync(out, { recursive: true, force: true })
  await execa(python, [generator, "--from", original, "--out", out, "--iteration", "20", ...options])
  return join(out, "iter_0000020")
}

const importTo = async (dir: string, name: string) => {
  const outputDir = join(work, "imported", name)
  const result = await importMegatronCheckpoint(dir, { outputDir, fingerprint: await fingerprint() })
  return { outputDir, result }
}

/** Validation loss and the trace file of a worker checkpoint. */
const evaluate = async (checkpoint: string, name: string) => {
  const evalOut = resultOf(
    await runWorker([
      "eval",
      "--config",
      workerConfig(`eval-${name}`, { eval: { valSamples: 24 } }),
      "--checkpoint",
      checkpoint
    ])
  )
  const traceFile = join(work, `trace-${name}.bin`)
  resultOf(
    await runWorker([
      "trace",
      "--config",
      workerConfig(`trace-${name}`, { trace: { numSamples: 8, output: traceFile } }),
      "--checkpoint",
      checkpoint
    ])
  )
  return { loss: evalOut.loss as number, trace: readFileSync(traceFile) }
}

const tensors = (file: string): Map<string, Float32Array> => {
  const bytes = readFileSync(file)
  const n = Number(bytes.readBigUInt64LE(0))
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString("utf8")) as Record<
    string,
    { dtype: string; data_offsets: [number, number] }
  >
  const out = new Map<string, Float32Array>()
  for (const [name, t] of Object.entries(header)) {
    if (name === "__metadata__") continue
    const slice = bytes.subarray(8 + n + t.data_offsets[0], 8 + n + t.data_offsets[1])
    const copy = slice.buffer.slice(slice.byteOffset, slice.byteOffset + slice.byteLength)
    if (t.dtype === "F32") out.set(name, new Float32Array(copy))
    else if (t.dtype === "BF16") {
      // bf16 is the upper half of a float32
      const wide = new Uint32Array(copy.byteLength / 2)
      new Uint16Array(copy).forEach((h, i) => (wide[i] = h << 16))
      out.set(name, new Float32Array(wide.buffer))
    } else throw new Error(`${name}: dtype ${t.dtype}`)
  }
  return out
}

/** Round to nearest even bfloat16, computed on the float32 bits (independently of the importer). */
const bf16 = (x: Float32Array): Float32Array => {
  const u = new Uint32Array(x.buffer.slice(0))
  for (let i = 0; i < u.length; i++) {
    const v = u[i]!
    u[i] = ((v + 0x7fff + ((v >>> 16) & 1)) >>> 16) << 16
  }
  return new Float32Array(u.buffer)
}

let reference: { loss: number; trace: Buffer }

beforeAll(async () => {
  python = pythonWith("torch", "numpy")
  writeIndexedDataset(prefix, syntheticCorpus(600, 64))
  const cfg = workerConfig("trained", {
    train: { globalBatchSize: 8, microBatchSize: 4, trainIters: 20, saveInterval: 20, lr: 3e-3, minLr: 3e-4 },
    runtime: { threads: 2, outputDir: join(work, "trained") }
  })
  resultOf(await runWorker(["train", "--config", cfg]))
  reference = await evaluate(original, "original")
}, 600_000)

describe("Megatron checkpoint import", () => {
  const variants: ReadonlyArray<readonly [string, ReadonlyArray<string>]> = [
    ["torch_dist, TE spec, sequential experts, EP 4", [
      "--format",
      "torch_dist",
      "--spec",
      "te",
      "--experts",
      "sequential",
      "--ep",
      "4"
    ]],
    ["torch_dist, local spec, grouped experts, EP 2", [
      "--format",
      "torch_dist",
      "--spec",
      "local",
      "--experts",
      "grouped",
      "--ep",
      "2"
    ]],
    ["torch_dist, TE grouped experts, optimizer state", [
      "--format",
      "torch_dist",
      "--experts",
      "te-grouped",
      "--ep",
      "8",
      "--with-optimizer"
    ]],
    ["legacy, sequential experts, EP 4", ["--format", "legacy", "--experts", "sequential", "--ep", "4"]],
    ["legacy, local spec, grouped experts, EP 2", [
      "--format",
      "legacy",
      "--spec",
      "local",
      "--experts",
      "grouped",
      "--ep",
      "2"
    ]],
    ["legacy, TE grouped experts, EP 1", ["--format", "legacy", "--experts", "te-grouped", "--ep", "1"]]
  ]
  for (const [label, options] of variants) {
    it(`fp32 ${label}: the same validation loss and traces, bit for bit`, async () => {
      const name = label.replace(/[^a-z0-9]+/gi, "-")
      const dir = await megatron(name, [...options, "--dtype", "fp32"])
      const { outputDir, result } = await importTo(dir, name)
      expect(result.iteration).toBe(20)
      expect(result.model).toMatchObject({ ...model, moeLayers: "[0]*1+[1]*2" })
      const mine = await evaluate(outputDir, name)
      expect(mine.loss).toBe(reference.loss)
      expect(mine.trace.equals(reference.trace)).toBe(true)
      const a = tensors(join(original, "model.safetensors"))
      const b = tensors(join(outputDir, "model.safetensors"))
      expect([...b.keys()]).toEqual([...a.keys()])
    })
  }

  it("bf16 (FLAME-MoE's storage): every weight is the original rounded to bf16; the loss stays close", async () => {
    const dir = await megatron("bf16", ["--format", "torch_dist", "--ep", "8", "--dtype", "bf16"])
    const { outputDir } = await importTo(dir, "bf16")
    const a = tensors(join(original, "model.safetensors"))
    const b = tensors(join(outputDir, "model.safetensors"))
    for (const [name, values] of a) expect(b.get(name), name).toEqual(bf16(values))
    const mine = await evaluate(outputDir, "bf16")
    expect(Math.abs(mine.loss - reference.loss)).toBeLessThan(0.02)
    expect(mine.trace.length).toBe(reference.trace.length)
  })

  it("stacked layer keys (a model whose layers are all MoE) are read along the leading layer axis", async () => {
    const out = join(work, "megatron", "stacked")
    const saved = join(work, "stacked-worker.safetensors")
    rmSync(out, { recursive: true, force: true })
    await execa(python, [
      generator,
      "--random-init",
      ...["--vocab-size", "64", "--hidden-size", "32", "--num-layers", "3", "--num-attention-heads", "4"],
      ...["--ffn-hidden-size", "48", "--moe-ffn-hidden-size", "16", "--num-experts", "8", "--topk", "2"],
      ...["--shared-expert-size", "32", "--moe-layers", "[1]*3", "--seq-length", "32"],
      ...["--out", out, "--iteration", "20", "--format", "torch_dist", "--ep", "2", "--dtype", "fp32"],
      ...["--layer-keys", "stacked", "--save-worker-tensors", saved]
    ])
    const { outputDir, result } = await importTo(join(out, "iter_0000020"), "stacked")
    expect(result.model.moeLayers).toBe("[1]*3")
    const expected = tensors(saved)
    const got = tensors(join(outputDir, "model.safetensors"))
    expect([...got.keys()].sort()).toEqual([...expected.keys()].sort())
    for (const [name, values] of expected) expect(got.get(name), name).toEqual(values)
  })

  it("the generator's own round trips: every layout read back by an independent Python reader", async () => {
    const run = await execa("bash", [
      join(repoRoot, "test", "integration", "megatron", "roundtrip.sh"),
      join(work, "roundtrip")
    ], {
      reject: false,
      all: true
    })
    expect(run.exitCode, run.all).toBe(0)
  })

  describe("bad input fails naming the checkpoint, file and tensor, and leaves nothing behind", () => {
    let good = ""
    beforeAll(async () => {
      good = await megatron("bad-base", ["--format", "torch_dist", "--ep", "4", "--dtype", "bf16"])
    })
    const broken = (name: string, damage: (dir: string) => void): string => {
      const dir = join(work, "broken", name, "iter_0000020")
      rmSync(join(work, "broken", name), { recursive: true, force: true })
      cpSync(good, dir, { recursive: true })
      damage(dir)
      return dir
    }
    const distcp = (dir: string) => readdirSync(dir).filter((f) => f.endsWith(".distcp")).sort()
    const failsWith = async (dir: string, pattern: RegExp) => {
      const outputDir = join(work, "imported-bad", String(Math.random()).slice(2))
      await expect(importMegatronCheckpoint(dir, { outputDir, fingerprint: "x" })).rejects.toThrow(pattern)
      expect(existsSync(join(outputDir, "model.safetensors"))).toBe(false)
      expect(existsSync(join(outputDir, "state.json"))).toBe(false)
    }

    it("a missing .distcp file", async () => {
      const dir = broken("missing", (d) => rmSync(join(d, distcp(d)[1]!)))
      await failsWith(dir, /Megatron checkpoint .*iter_0000020, file __\d+_\d+\.distcp, tensor [\w.]+: is missing/)
    })
    it("a truncated .distcp file", async () => {
      const dir = broken("truncated", (d) => {
        const f = join(d, distcp(d)[0]!)
        truncateSync(f, Math.floor(readFileSync(f).length / 2))
      })
      await failsWith(
        dir,
        /file __\d+_\d+\.distcp, tensor [\w.]+: its storage entry \(offset \d+, length \d+\) runs past the file's end/
      )
    })
    it("a storage entry past its file's end", async () => {
      const dir = broken("past-end", (d) => {
        const f = join(d, distcp(d)[0]!)
        writeFileSync(f, readFileSync(f).subarray(0, 100))
      })
      await failsWith(dir, /runs past the file's end/)
    })
    it("an unknown tensor (a bias FLAME-MoE does not have)", async () => {
      const dir = await megatron("unknown", [
        "--format",
        "torch_dist",
        "--ep",
        "2",
        "--extra-tensor",
        "decoder.layers.1.self_attention.linear_proj.bias"
      ])
      await failsWith(
        dir,
        /tensor decoder\.layers\.1\.self_attention\.linear_proj\.bias: is not part of FLAME-MoE's architecture/
      )
    })
    it("a shape that contradicts the stored args", async () => {
      const dir = await megatron("contradiction", [
        "--format",
        "torch_dist",
        "--ep",
        "2",
        "--override-arg",
        "ffn_hidden_size=40"
      ])
      await failsWith(
        dir,
        /tensor decoder\.layers\.0\.mlp\.linear_fc1\.weight: has shape \[96, 32\], but the stored args give \[80, 32\]/
      )
    })
    it("a non-FLAME architecture (grouped-query attention, q/k layernorm, LayerNorm)", async () => {
      for (
        const [arg, name] of [
          ["group_query_attention=true", "group_query_attention"],
          ["qk_layernorm=true", "qk_layernorm"],
          ["normalization=LayerNorm", "normalization"],
          ["add_bias_linear=true", "add_bias_linear"],
          ["moe_router_pre_softmax=false", "moe_router_pre_softmax"]
        ] as const
      ) {
        const dir = await megatron(`arch-${name}`, ["--format", "torch_dist", "--ep", "2", "--override-arg", arg])
        await failsWith(
          dir,
          new RegExp(`iter_0000020, file common\\.pt: args\\.${name} is .*FLAME-MoE's architecture has`)
        )
      }
    })
    it("the stage's declared model differs from the checkpoint's", async () => {
      const outputDir = join(work, "imported-bad", "expected")
      await expect(
        importMegatronCheckpoint(good, { outputDir, fingerprint: "x", expected: { ...model, hiddenSize: 64 } })
      ).rejects.toThrow(/hiddenSize = 32, the stage expects 64/)
    })
    it("reads the model from the stored args", async () => {
      expect(await readCheckpointModel(good)).toMatchObject(model)
    })
  })
})
