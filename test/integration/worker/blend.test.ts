// data.blend: the worker's sample order of a Megatron-LM weighted blend (`--data-path W1 P1 W2 P2
// ...`) against blend_oracle.py, an independent numpy transcription of Megatron-core's
// BlendedMegatronDatasetBuilder / BlendedDataset / GPTDataset as FLAME-MoE pinned them; train,
// eval and trace reading a blend; checkpoints recording it; and the config errors.
import { execa } from "execa"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { pythonWith } from "../../support/python.ts"
import { kernelsDir, resultOf, runWorker, writeIndexedDataset, writeJson } from "./helpers.ts"

const work = mkdtempSync(join(tmpdir(), "flame-blend-test-"))
const oracle = join(dirname(fileURLToPath(import.meta.url)), "blend_oracle.py")
const SEQ = 16

/** Deterministic documents: lengths uniform in [lo, hi], token ids in [1, 63], EOD (0) last. */
const documents = (n: number, lo: number, hi: number, seed: number): Array<Array<number>> => {
  let s = seed >>> 0
  const next = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return s / 4294967296
  }
  return Array.from({ length: n }, () => {
    const len = lo + Math.floor(next() * (hi - lo + 1))
    return [...Array.from({ length: len }, () => 1 + Math.floor(next() * 63)), 0]
  })
}

// Uneven prefixes: documents shorter and longer than a sequence (16 tokens), one with an empty
// document, one so small that every split needs many epochs.
const prefixes = {
  mixed: join(work, "data", "mixed"), // 150 documents of 4..41 tokens, one empty
  long: join(work, "data", "long"), // 40 documents of 11..91 tokens
  tiny: join(work, "data", "tiny"), // 25 documents of 3..13 tokens: 11+ epochs per split
  short: join(work, "data", "short") // 300 documents of 2..9 tokens
}
const all = [prefixes.mixed, prefixes.long, prefixes.tiny, prefixes.short]

const model = {
  vocabSize: 64,
  hiddenSize: 16,
  numLayers: 2,
  numAttentionHeads: 2,
  ffnHiddenSize: 32,
  moeFfnHiddenSize: 16,
  numExperts: 4,
  topK: 2,
  moeLayers: "[0]*1+[1]*1",
  seqLength: SEQ
}

interface Blend {
  readonly weights: ReadonlyArray<number>
  readonly prefixes: ReadonlyArray<string>
}
type Split = "train" | "valid" | "test"
interface Row {
  readonly dataset: number
  readonly datasetSample: number
  readonly tokens: ReadonlyArray<number>
}

/** Megatron's train_valid_test_num_samples (training.py get_train_valid_test_num_samples). */
const megatronSplitSamples = (trainIters: number, gbs: number, evalInterval: number, evalIters: number) => ({
  train: trainIters * gbs,
  valid: (Math.floor(trainIters / evalInterval) + 1) * evalIters * gbs,
  test: evalIters * gbs
})
type Sizes = ReturnType<typeof megatronSplitSamples>

let n = 0
const blendConfig = (blend: Blend, split: string, sizes: Sizes | undefined, extra: Record<string, unknown> = {}) =>
  writeJson(join(work, `cfg-${n++}.json`), {
    model,
    data: {
      blend: blend.prefixes.map((prefix, i) => ({ weight: blend.weights[i], prefix })),
      split,
      ...(sizes === undefined ? {} : { splitSamples: sizes })
    },
    ...extra
  })

const workerRows = async (cfg: string, split: Split, count?: number): Promise<Array<Row>> => {
  const r = await runWorker([
    "samples",
    "--config",
    cfg,
    "--split",
    split,
    ...(count === undefined ? [] : ["--count", String(count)])
  ])
  expect(r.exitCode, r.stderr).toBe(0)
  const rows = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as Row & { index: number })
  rows.forEach((row, i) => expect(row.index).toBe(i))
  return rows.map(({ dataset, datasetSample, tokens }) => ({ dataset, datasetSample, tokens }))
}

interface OracleOut {
  readonly size: number
  readonly numSamples: ReadonlyArray<number>
  readonly epochs: ReadonlyArray<number>
  readonly separateFinalEpoch: ReadonlyArray<boolean>
  readonly rows: Array<Row>
  readonly error?: string
}
const oracleRows = async (
  blend: Blend,
  split: string,
  sizes: Sizes,
  which: Split,
  opts: { margin?: number; ties?: "first" | "last" } = {}
): Promise<OracleOut> => {
  const dataPath = blend.prefixes.flatMap((p, i) => [String(blend.weights[i]), p])
  const r = await execa(pythonWith("numpy"), [
    oracle,
    "--data-path",
    ...dataPath,
    "--split",
    split,
    "--seq-length",
    String(SEQ),
    "--seed",
    "1234",
    "--sizes",
    `${sizes.train},${sizes.valid},${sizes.test}`,
    "--which",
    which,
    "--margin",
    String(opts.margin ?? 0.5),
    "--ties",
    opts.ties ?? "first"
  ])
  return JSON.parse(r.stdout) as OracleOut
}

beforeAll(async () => {
  await execa("make", ["-C", kernelsDir, "-j2"])
  const mixed = documents(150, 4, 41, 11)
  mixed[40] = []
  writeIndexedDataset(prefixes.mixed, mixed)
  writeIndexedDataset(prefixes.long, documents(40, 11, 91, 12))
  writeIndexedDataset(prefixes.tiny, documents(25, 3, 13, 13))
  writeIndexedDataset(prefixes.short, documents(300, 2, 9, 14))
})
afterAll(() => rmSync(work, { recursive: true, force: true }))

// FLAME-MoE's case: one equally weighted prefix per shard, --split 90,5,5; sizes as Megatron
// computes them for train_iters 50, global batch 8, eval_interval 20, eval_iters 2.
const equal: Blend = { weights: [1, 1, 1, 1], prefixes: all }
const flameSizes = megatronSplitSamples(50, 8, 20, 2) // 400, 48, 16
const unequal: Blend = { weights: [3, 1, 2.5, 0.7], prefixes: all }
const unequalSizes: Sizes = { train: 333, valid: 47, test: 29 }

describe("data.blend sample order equals Megatron-core's (blend_oracle.py)", () => {
  const cases: Array<[string, Blend, string, Sizes, ReadonlyArray<Split>]> = [
    ["equal weights, 90,5,5", equal, "90,5,5", flameSizes, ["train", "valid", "test"]],
    ["unequal weights, 90,5,5", unequal, "90,5,5", unequalSizes, ["train", "valid", "test"]],
    // the router-trace capture: --split 95,0,5 --eval-iters 25 (valid is not built at all)
    ["equal weights, 95,0,5", equal, "95,0,5", megatronSplitSamples(50, 8, 1000, 3), ["train", "test"]],
    ["unequal weights, 95,0,5", unequal, "95,0,5", unequalSizes, ["train", "test"]],
    ["one weighted prefix (--data-path 1.0 P)", { weights: [1], prefixes: [prefixes.mixed] }, "90,5,5", flameSizes, [
      "train",
      "test"
    ]]
  ]
  for (const [name, blend, split, sizes, splits] of cases) {
    it(name, async () => {
      const cfg = blendConfig(blend, split, sizes)
      for (const which of splits) {
        const [mine, ref] = await Promise.all([workerRows(cfg, which), oracleRows(blend, split, sizes, which)])
        expect(ref.error).toBeUndefined()
        expect(mine.length, which).toBe(ref.size)
        expect(mine.length).toBeGreaterThanOrEqual(sizes[which])
        expect(mine, `${name}: ${which}`).toEqual(ref.rows)
      }
    })
  }

  it("the cases exercise multi-epoch prefixes, every dataset, and both final-epoch shuffles", async () => {
    const ref = await oracleRows(equal, "90,5,5", flameSizes, "valid")
    expect(Math.max(...ref.epochs)).toBeGreaterThan(5) // the tiny prefix
    expect(new Set(ref.rows.map((r) => r.dataset))).toEqual(new Set([0, 1, 2, 3]))
    // GPTDataset shuffles a short last epoch separately (< 80% of an epoch) or with the others
    const kinds = new Set<string>()
    for (const which of ["train", "valid", "test"] as const) {
      const o = await oracleRows(equal, "90,5,5", flameSizes, which)
      o.epochs.forEach((e, d) => e > 1 && kinds.add(String(o.separateFinalEpoch[d])))
    }
    expect(kinds).toEqual(new Set(["true", "false"]))
    const res = resultOf(
      await runWorker(["samples", "--config", blendConfig(equal, "90,5,5", flameSizes), "--split", "valid"])
    )
    const sets = res["datasets"] as Array<Record<string, number>>
    expect(sets.map((d) => d["numSamples"])).toEqual(ref.numSamples)
    expect(sets.map((d) => d["epochs"])).toEqual(ref.epochs)
  })

  it("would notice a wrong margin or tie-break (the oracle with either differs from the worker)", async () => {
    const differs = async (opts: { margin?: number; ties?: "first" | "last" }) => {
      let any = false
      for (const [blend, sizes] of [[equal, flameSizes], [unequal, unequalSizes]] as const) {
        const cfg = blendConfig(blend, "90,5,5", sizes)
        for (const which of ["train", "valid", "test"] as const) {
          const [mine, ref] = await Promise.all([
            workerRows(cfg, which),
            oracleRows(blend, "90,5,5", sizes, which, opts)
          ])
          if (JSON.stringify(mine) !== JSON.stringify(ref.rows)) any = true
        }
      }
      return any
    }
    expect(await differs({ margin: 0 })).toBe(true)
    expect(await differs({ ties: "last" })).toBe(true)
  })

  it("without data.splitSamples, train's target is trainIters * globalBatchSize", async () => {
    const cfg = blendConfig(unequal, "90,5,5", undefined, {
      train: { trainIters: 10, globalBatchSize: 8, microBatchSize: 8 }
    })
    const [mine, ref] = await Promise.all([
      workerRows(cfg, "train"),
      oracleRows(unequal, "90,5,5", { train: 80, valid: 0, test: 0 }, "train")
    ])
    expect(mine).toEqual(ref.rows)
  })
})

describe("train, eval and trace read the blend", () => {
  const train = {
    globalBatchSize: 4,
    microBatchSize: 2,
    trainIters: 4,
    saveInterval: 0,
    logInterval: 2,
    lr: 1e-3,
    minLr: 1e-4
  }
  const sizes: Sizes = { train: 16, valid: 12, test: 10 }
  const cfg = (name: string, blend: Blend, extra: Record<string, unknown> = {}) =>
    blendConfig(blend, "90,5,5", sizes, { train, runtime: { threads: 2, outputDir: join(work, name) }, ...extra })
  const ckpt = join(work, "blend-train", "iter_0000004")

  it("trains and records the blend in the checkpoint", async () => {
    const r = await runWorker(["train", "--config", cfg("blend-train", unequal)])
    expect(r.exitCode, r.stderr).toBe(0)
    const state = JSON.parse(readFileSync(join(ckpt, "state.json"), "utf8")) as {
      train: Record<string, unknown>
      data: { blend: Array<Record<string, number>> }
    }
    expect(state.train["dataBlendWeights"]).toEqual([3, 1, 2.5, 0.7])
    expect(state.train["dataTrainSamples"]).toBe(16)
    expect(state.data.blend.map((d) => d["weight"])).toEqual([3, 1, 2.5, 0.7])
    expect(state.data.blend[2]?.["numSequences"]).toBe(25)
    expect(state.data.blend[0]?.["numDocuments"]).toBe(150)
    expect(state.data.blend[0]?.["numSequences"]).toBe(149)
  })

  it("refuses to resume on other weights or other datasets", async () => {
    const resume = (name: string, blend: Blend) =>
      cfg(name, blend, { runtime: { threads: 2, outputDir: join(work, name), resumeFrom: ckpt } })
    const w = await runWorker(["train", "--config", resume("r1", { ...unequal, weights: [3, 1, 2.5, 0.8] })])
    expect(w.exitCode).toBe(4)
    expect(w.stderr).toMatch(/training config differs: train\.dataBlendWeights is \[3,1,2\.5,0\.7\] in the checkpoint/)
    const d = await runWorker([
      "train",
      "--config",
      resume("r2", { ...unequal, prefixes: [all[1], all[0], all[2], all[3]] as Array<string> })
    ])
    expect(d.exitCode).toBe(4)
    expect(d.stderr).toMatch(/was trained on a different dataset/)
  })

  it("traces the test split's blend samples and evaluates the valid split", async () => {
    const out = join(work, "trace.bin")
    const c = cfg("blend-trace", unequal, { trace: { numSamples: 3 } })
    const t = await runWorker(["trace", "--config", c, "--checkpoint", ckpt, "--output", out])
    expect(t.exitCode, t.stderr).toBe(0)
    const b = readFileSync(out)
    const tokens = Array.from({ length: 3 * SEQ }, (_, i) => b.readInt32LE(40 + 4 * 1 + 8 * 3 + 4 * i))
    const rows = await workerRows(c, "test", 3)
    expect(tokens).toEqual(rows.flatMap((r) => r.tokens.slice(0, SEQ)))
    const e = await runWorker([
      "eval",
      "--config",
      cfg("blend-eval", unequal, { eval: { valSamples: 12 } }),
      "--checkpoint",
      ckpt
    ])
    expect(e.exitCode, e.stderr).toBe(0)
    expect(resultOf(e)["samples"]).toBe(12)
    expect(Number.isFinite(resultOf(e)["loss"] as number)).toBe(true)
  })
})

describe("bad blends fail with a clear message", () => {
  const fails = async (
    data: Record<string, unknown>,
    code: number,
    pattern: RegExp,
    args: Array<string> = ["--split", "train"]
  ) => {
    const cfg = writeJson(join(work, `bad-${n++}.json`), {
      model,
      data: { splitSamples: { train: 8, valid: 4, test: 4 }, ...data }
    })
    const r = await runWorker(["samples", "--config", cfg, ...args])
    expect(r.exitCode, r.stderr).toBe(code)
    expect(r.stderr).toMatch(pattern)
  }
  it("a missing prefix file names the prefix", async () => {
    const missing = join(work, "data", "nowhere")
    await fails(
      { blend: [{ weight: 1, prefix: all[0] }, { weight: 1, prefix: missing }] },
      3,
      new RegExp(`cannot open dataset index ${missing}\\.idx`)
    )
  })
  it("weights must be > 0, the blend non-empty, and either prefix or blend", async () => {
    await fails(
      { blend: [{ weight: 1, prefix: all[0] }, { weight: 0, prefix: all[1] }] },
      2,
      /config\.data\.blend\[1\]\.weight: expected number > 0, got 0/
    )
    await fails(
      { blend: [{ weight: -2, prefix: all[0] }] },
      2,
      /config\.data\.blend\[0\]\.weight: expected number > 0, got -2/
    )
    await fails({ blend: [{ prefix: all[0] }] }, 2, /config\.data\.blend\[0\]\.weight: missing required key/)
    await fails({ blend: [{ weight: 1, prefix: all[0], extra: 1 }] }, 2, /config\.data\.blend\[0\]\.extra: unknown key/)
    await fails({ blend: [] }, 2, /config\.data\.blend: expected non-empty array/)
    await fails(
      { prefix: all[0], blend: [{ weight: 1, prefix: all[1] }] },
      2,
      /config\.data: give either prefix .* or blend .*, not both/
    )
    await fails(
      { blend: [{ weight: 1, prefix: all[0] }], splitSamples: { train: 8 } },
      2,
      /config\.data\.splitSamples\.valid: missing required key/
    )
  })
  it("a split of weight 0 has no data, and a prefix too small for a split is refused as Megatron cannot build it", async () => {
    await fails(
      { blend: [{ weight: 1, prefix: all[0] }], split: "95,0,5" },
      2,
      /"95,0,5" gives the valid split weight 0/,
      ["--split", "valid"]
    )
    const few = join(work, "data", "few")
    writeIndexedDataset(few, documents(8, 5, 9, 15)) // 8 sequences: the valid range [7, 8) ... test [8, 8) is empty
    await fails(
      { blend: [{ weight: 1, prefix: all[0] }, { weight: 1, prefix: few }] },
      3,
      new RegExp(`dataset ${few}: the test split .* Megatron-LM cannot build`)
    )
  })
})
