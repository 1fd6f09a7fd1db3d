/**
 * The pretrain_gpt.py command line of the published configuration, flag by flag. Expected values are
 * FLAME-MoE's, transcribed from its published configuration (the architecture, training and scale
 * figures of the reference facts, and the flags of configs/model/flame-moe.sh,
 * configs/train/flame-moe.sh and scripts/training/modules/flame-moe_step2.sh), not computed from the
 * project's own constants. The command line is generated from the train stages of
 * `scaling-suite --preset full`, as a run would.
 */
import { Effect, Schema } from "effect"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import suite from "../../../pipelines/scaling-suite.ts"
import type { MegatronTraining } from "../../../src/megatron/Arguments.ts"
import { flattenArguments, layoutProblems, pretrainArguments, wsdDecayIters } from "../../../src/megatron/Arguments.ts"
import { defaultMegatronParams } from "../../../src/megatron/Params.ts"
import { resolve } from "../../../src/Pipeline.ts"
import { fromRoot } from "../../../src/ProjectRoot.ts"
import { TrainParams } from "../../../stages/train.ts"

/** The seven released scales as published: layers, hidden, ffn, moe ffn, layer pattern, micro batch, iterations, save/eval interval. */
const published = [
  ["flame-moe-38m", 9, 256, 1368, 176, "[0]*1+[1]*8", 32, 2121, 212],
  ["flame-moe-98m", 9, 512, 2736, 352, "[0]*1+[1]*8", 32, 2424, 242],
  ["flame-moe-115m", 12, 512, 2736, 352, "[0]*1+[1]*11", 16, 4165, 416],
  ["flame-moe-290m", 9, 1024, 5472, 704, "[0]*1+[1]*8", 8, 5473, 540],
  ["flame-moe-419m", 15, 1024, 5472, 704, "[0]*1+[1]*14", 8, 5685, 568],
  ["flame-moe-721m", 12, 1536, 8208, 1056, "[0]*1+[1]*11", 8, 8815, 880],
  ["flame-moe-1.7b", 18, 2048, 10944, 1408, "[0]*1+[1]*17", 4, 11029, 1100]
] as const

const DATA = "/data/dclm/dclm_text_document"
const SAVE = "/ckpt/flame-moe"
/** $SLURM_JOB_ID, FLAME-MoE's --wandb-exp-name. */
const JOB = "4242"
const paths = { dataPath: [DATA], saveDir: SAVE, runName: JOB }

/** FLAME-MoE's arguments for one scale: [flag, value] (value undefined for a switch). */
const flameMoeFlags = (s: (typeof published)[number]): ReadonlyArray<[string, string | number | undefined]> => {
  const [, layers, hidden, ffn, moeFfn, freq, mbs, iters, interval] = s
  return [
    // configs/model/flame-moe.sh: network size
    ["--hidden-size", hidden],
    ["--ffn-hidden-size", ffn],
    ["--num-layers", layers],
    ["--num-attention-heads", 16],
    ["--swiglu", undefined],
    ["--max-position-embeddings", 2048],
    ["--normalization", "RMSNorm"],
    ["--norm-epsilon", 1e-6],
    ["--untie-embeddings-and-output-weights", undefined],
    ["--position-embedding-type", "rope"],
    ["--disable-bias-linear", undefined],
    // mixture of experts
    ["--moe-ffn-hidden-size", moeFfn],
    ["--num-experts", 64],
    ["--moe-router-topk", 6],
    ["--moe-shared-expert-intermediate-size", 2 * moeFfn],
    ["--moe-layer-freq", freq],
    ["--moe-router-dtype", "fp32"],
    ["--moe-router-pre-softmax", undefined],
    ["--moe-router-score-function", "softmax"],
    ["--moe-aux-loss-coeff", 0.01],
    ["--moe-z-loss-coeff", 0.001],
    // regularization, initialization, tokenizer
    ["--hidden-dropout", 0],
    ["--attention-dropout", 0],
    ["--init-method-std", 0.02],
    ["--tokenizer-type", "HuggingFaceTokenizer"],
    ["--tokenizer-model", "EleutherAI/pythia-12b"],
    // configs/train/flame-moe.sh: infrastructure (EP 8 on 4 nodes x 8 GPUs). No --sequence-parallel
    // (FLAME-MoE removed it with --tensor-model-parallel-size 1 in 5b133cd: useless without tensor parallelism).
    ["--pipeline-model-parallel-size", 1],
    ["--expert-model-parallel-size", 8],
    ["--use-distributed-optimizer", undefined],
    ["--overlap-grad-reduce", undefined],
    ["--overlap-param-gather", undefined],
    ["--moe-token-dispatcher-type", "alltoall"],
    ["--distributed-timeout-minutes", 30],
    ["--bf16", undefined],
    // training
    ["--micro-batch-size", mbs],
    ["--global-batch-size", 1024],
    ["--lr", 3e-4],
    ["--min-lr", 3e-5],
    ["--lr-decay-style", "WSD"],
    ["--lr-warmup-fraction", 0.01],
    ["--lr-wsd-decay-iters", Math.trunc(iters / 10)],
    ["--train-iters", iters],
    // data
    ["--seq-length", 2048],
    ["--data-path", DATA],
    ["--split", "90,5,5"],
    // scripts/training/modules/flame-moe_step2.sh: save (wandb off unless a project is set; tensorboard
    // in the save directory's tensorboard/, where FLAME-MoE used the save directory itself: see below)
    ["--log-interval", 5],
    ["--log-throughput", undefined],
    ["--save", SAVE],
    ["--save-interval", interval],
    ["--load", SAVE],
    ["--eval-interval", interval],
    ["--tensorboard-dir", `${SAVE}/tensorboard`]
  ]
}

/** Megatron defaults FLAME-MoE relied on, pinned because the stage's params carry them. */
const pinned: ReadonlyArray<[string, string | number]> = [
  ["--tensor-model-parallel-size", 1],
  ["--rotary-base", 10000],
  ["--lr-wsd-decay-style", "exponential"],
  ["--weight-decay", 0.01],
  ["--clip-grad", 1],
  ["--adam-beta1", 0.9],
  ["--adam-beta2", 0.999],
  ["--adam-eps", 1e-8],
  ["--seed", 1234]
]

/** argv -> flag -> value (undefined for a switch), refusing a flag given twice. */
const parse = (argv: ReadonlyArray<string>): Map<string, string | undefined> => {
  const flags = new Map<string, string | undefined>()
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!
    expect(flag.startsWith("--"), `${flag} at ${i} is not a flag`).toBe(true)
    expect(flags.has(flag), `${flag} given twice`).toBe(false)
    const next = argv[i + 1]
    flags.set(flag, next !== undefined && !next.startsWith("--") ? argv[++i] : undefined)
  }
  return flags
}

const fullTrainParams = () =>
  Effect.runSync(
    Effect.map(
      resolve(suite, {
        preset: "full",
        config: {
          corpus: fromRoot("fixtures", "corpus"),
          tokenizer: fromRoot("fixtures", "tokenizer", "tokenizer.json"),
          tasks: fromRoot("fixtures", "eval")
        },
        executor: { gpus: 8 }
      }),
      (pipeline) =>
        new Map(
          pipeline.stages.filter((s) => s.id.startsWith("train/")).map((s) => [
            s.id.slice("train/".length),
            Schema.decodeUnknownSync(TrainParams)(s.encodedParams)
          ])
        )
    )
  )

describe("Megatron-LM arguments for the published configuration", () => {
  const params = fullTrainParams()

  for (const scale of published) {
    it(`${scale[0]}: every FLAME-MoE flag with its value, plus the pinned defaults, nothing else`, () => {
      const p = params.get(scale[0])!
      expect(p).toBeDefined()
      const argv = flattenArguments(pretrainArguments(p, defaultMegatronParams, paths))
      const actual = parse(argv)
      const expected = [...flameMoeFlags(scale), ...pinned]
      for (const [flag, value] of expected) {
        expect(actual.has(flag), `missing ${flag}`).toBe(true)
        const got = actual.get(flag)
        if (value === undefined) expect(got, `${flag} is a switch`).toBeUndefined()
        else if (typeof value === "number") expect(Number(got), flag).toBe(value)
        else expect(got, flag).toBe(value)
      }
      expect([...actual.keys()].sort()).toEqual(expected.map(([flag]) => flag).sort())
      expect(layoutProblems(p, defaultMegatronParams)).toEqual([])
    })
  }

  it("an absolute warm-up is --lr-warmup-iters in place of --lr-warmup-fraction (Megatron refuses both)", () => {
    const argv = flattenArguments(
      pretrainArguments({ ...params.get("flame-moe-38m")!, warmupIters: 250 }, defaultMegatronParams, paths)
    )
    expect(argv.slice(argv.indexOf("--lr-warmup-iters"), argv.indexOf("--lr-warmup-iters") + 2)).toEqual([
      "--lr-warmup-iters",
      "250"
    ])
    expect(argv).not.toContain("--lr-warmup-fraction")
    const fraction = flattenArguments(pretrainArguments(params.get("flame-moe-38m")!, defaultMegatronParams, paths))
    expect(fraction).toContain("--lr-warmup-fraction")
    expect(fraction).not.toContain("--lr-warmup-iters")
  })

  it("groups the arguments as FLAME-MoE's scripts do", () => {
    const args = pretrainArguments(params.get("flame-moe-38m")!, defaultMegatronParams, paths)
    expect(args.moe[0]).toBe("--moe-ffn-hidden-size")
    expect(args.infra).toContain("--expert-model-parallel-size")
    expect(args.data).toEqual(["--seq-length", "2048", "--data-path", DATA, "--split", "90,5,5"])
    expect(args.save.filter((a) => a.startsWith("--"))).toEqual(
      [
        "--log-interval",
        "--log-throughput",
        "--save",
        "--save-interval",
        "--load",
        "--eval-interval",
        "--tensorboard-dir"
      ]
    )
    expect(args.extra).toEqual([])
  })

  it("passes FLAME-MoE's per-shard blend as one --data-path list, weight before prefix", () => {
    const args = pretrainArguments(params.get("flame-moe-38m")!, defaultMegatronParams, {
      ...paths,
      dataPath: ["1.0", "/d/a_text_document", "1.0", "/d/b_text_document"]
    })
    expect(args.data).toEqual([
      "--seq-length",
      "2048",
      "--data-path",
      "1.0",
      "/d/a_text_document",
      "1.0",
      "/d/b_text_document",
      "--split",
      "90,5,5"
    ])
  })

  it("carries a changed param to Megatron, and extra arguments after the generated ones", () => {
    const p = { ...params.get("flame-moe-38m")!, weightDecay: 0.1, seed: 7, data: { split: "98,1,1", seed: 7 } }
    const argv = flattenArguments(
      pretrainArguments(p, { ...defaultMegatronParams, extraArgs: ["--exit-signal-handler"], evalInterval: 50 }, {
        ...paths,
        saveDir: path.join(SAVE, "x")
      })
    )
    const flags = parse(argv)
    expect(flags.get("--weight-decay")).toBe("0.1")
    expect(flags.get("--seed")).toBe("7")
    expect(flags.get("--split")).toBe("98,1,1")
    expect(flags.get("--eval-interval")).toBe("50")
    expect(argv[argv.length - 1]).toBe("--exit-signal-handler")
  })

  it("with FLAME-MoE's logging settings, its SAVE_ARGS exactly, in its order", () => {
    // scripts/training/modules/flame-moe_step2.sh, with WANDB_PROJECT's default from
    // scripts/training/flame-moe.sh and the save directory as FLAME-MoE's $SSD_WEIGHTS.
    const m = { ...defaultMegatronParams, wandbProject: "flame-moe", tensorboardDir: SAVE }
    expect(pretrainArguments(params.get("flame-moe-38m")!, m, paths).save).toEqual([
      "--log-interval",
      "5",
      "--log-throughput",
      "--save",
      SAVE,
      "--save-interval",
      "212",
      "--load",
      SAVE,
      "--eval-interval",
      "212",
      "--wandb-save-dir",
      SAVE,
      "--wandb-project",
      "flame-moe",
      "--wandb-exp-name",
      JOB,
      "--tensorboard-dir",
      SAVE
    ])
  })

  it("logging is configurable: wandb off without a project, tensorboard off with null, names and directories set", () => {
    const p = params.get("flame-moe-38m")!
    const flags = (m: Partial<typeof defaultMegatronParams>) =>
      parse(flattenArguments(pretrainArguments(p, { ...defaultMegatronParams, ...m }, paths)))
    const plain = flags({})
    expect([...plain.keys()].filter((f) => f.startsWith("--wandb"))).toEqual([])
    expect(plain.get("--tensorboard-dir")).toBe(`${SAVE}/tensorboard`)
    expect(flags({ wandbProject: "" }).has("--wandb-project")).toBe(false)
    expect(flags({ tensorboardDir: null }).has("--tensorboard-dir")).toBe(false)
    const named = flags({ wandbProject: "p", wandbExpName: "run-1", wandbSaveDir: "/logs/wandb", tensorboardDir: "tb" })
    expect(named.get("--wandb-project")).toBe("p")
    expect(named.get("--wandb-exp-name")).toBe("run-1")
    expect(named.get("--wandb-save-dir")).toBe("/logs/wandb")
    // torchrun runs in the Megatron-LM checkout: a relative directory is taken from where flame-pipe runs.
    expect(named.get("--tensorboard-dir")).toBe(path.resolve("tb"))
    expect(layoutProblems(p, { ...defaultMegatronParams, wandbProject: "p", wandbExpName: "" })).toEqual([
      "wandbExpName is empty: Megatron-LM needs an experiment name for wandb"
    ])
  })

  it("--sequence-parallel only with tensor parallelism (Megatron drops it, with a warning, at tensor parallel 1)", () => {
    const p = params.get("flame-moe-38m")!
    const tp1 = parse(flattenArguments(pretrainArguments(p, defaultMegatronParams, paths)))
    expect(tp1.has("--sequence-parallel")).toBe(false)
    expect(tp1.get("--tensor-model-parallel-size")).toBe("1")
    const tp2 = parse(flattenArguments(pretrainArguments(p, { ...defaultMegatronParams, tensorParallel: 2 }, paths)))
    expect(tp2.has("--sequence-parallel")).toBe(true)
    expect(tp2.get("--sequence-parallel")).toBeUndefined()
    expect(tp2.get("--tensor-model-parallel-size")).toBe("2")
  })

  it("wsd decay iterations are trainIters / 10 by integer division, for every scale", () => {
    for (const [, , , , , , , iters] of published) expect(wsdDecayIters(iters, 0.1)).toBe(Math.trunc(iters / 10))
  })

  it("names what Megatron's checks would reject before a job waits in the queue", () => {
    const p: MegatronTraining = params.get("flame-moe-38m")!
    expect(layoutProblems(p, { ...defaultMegatronParams, nodes: 1, gpusPerNode: 4 })).toEqual([
      "data-parallel size 4 is not divisible by expertParallel 8"
    ])
    expect(layoutProblems({ ...p, globalBatchSize: 1000 }, defaultMegatronParams)).toEqual([
      "globalBatchSize 1000 is not divisible by microBatchSize x data-parallel size = 32 x 32"
    ])
    expect(layoutProblems({ ...p, data: { split: "90,5,5", seed: 1 } }, defaultMegatronParams)[0]).toContain(
      "Megatron-LM orders the data with --seed"
    )
  })
})
