/**
 * A Megatron stage's launch as `plan` previews it and as the stage runs it (one function, two
 * sites), the --data-path it takes from its inputs (as the stage itself computes it), and the job
 * time it hands the Slurm executor.
 */
import { it } from "@effect/vitest"
import { Effect, Either } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect } from "vitest"
import suite from "../../../pipelines/scaling-suite.ts"
import type { LaunchPlan } from "../../../src/megatron/Launch.ts"
import {
  dataPathFromInputs,
  datasetPrefixIn,
  isMegatronStage,
  previewLaunch,
  stageLaunch,
  withMegatronTimes
} from "../../../src/megatron/StageLaunch.ts"
import type { MegatronStageParams } from "../../../src/megatron/StageLaunch.ts"
import { resolve } from "../../../src/Pipeline.ts"
import { fromRoot } from "../../../src/ProjectRoot.ts"
import { settingsForStage, slurmSettingsFromConfig } from "../../../src/slurm/Settings.ts"
import type { StageContext } from "../../../src/Stage.ts"
import { megatronDataPath } from "../../../stages/flame/model.ts"

const fullSuite = (overrides: ReadonlyArray<string>) =>
  Effect.runSync(
    resolve(suite, {
      preset: "full",
      config: {
        corpus: fromRoot("fixtures", "corpus"),
        tokenizer: fromRoot("fixtures", "tokenizer", "tokenizer.json"),
        tasks: fromRoot("fixtures", "eval")
      },
      overrides,
      executor: { gpus: 8 }
    })
  )

const onMegatron = fullSuite(["train/*.backend=megatron", "train/*.megatron.path=/opt/Megatron-LM"])
const train38m = onMegatron.byId.get("train/flame-moe-38m")!

/** Output directories holding one tokenized dataset each, as the tokenize stages leave them. */
const datasets = (n: number): ReadonlyArray<string> => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "fp-stage-launch-"))
  return Array.from({ length: n }, (_, i) => {
    const dir = path.join(root, `shard-${i}`, "dataset")
    fs.mkdirSync(dir, { recursive: true })
    for (const ext of ["bin", "idx"]) fs.writeFileSync(path.join(dir, `dclm_${i}_text_document.${ext}`), "")
    return dir
  })
}

/** The words after a flag, up to the next flag. */
const flag = (plan: LaunchPlan, name: string): ReadonlyArray<string> => {
  const at = plan.args.indexOf(name)
  expect(at, `${name} missing`).toBeGreaterThanOrEqual(0)
  let end = at + 1
  while (end < plan.args.length && !plan.args[end]!.startsWith("--")) end++
  return plan.args.slice(at + 1, end)
}

/** The one value of a flag. */
const value = (plan: LaunchPlan, name: string): string | undefined => flag(plan, name)[0]

describe("a Megatron stage's launch", () => {
  it.effect("--data-path from the inputs is what the train stage computes for them: the blend, or the merged dataset", () =>
    Effect.gen(function*() {
      const dirs = datasets(3)
      const stageSees = (inputs: Record<string, string>) =>
        megatronDataPath({ stageId: "train/x", inputs } as unknown as StageContext<unknown>)
      // blend10 after blend9: the blend's order is numeric, as the suite numbers its shards.
      const blend = { blend0: dirs[0]!, blend10: dirs[2]!, blend9: dirs[1]!, worker: "/w/flame-worker" }
      expect(dataPathFromInputs(blend, datasetPrefixIn)).toEqual(yield* stageSees(blend))
      expect(dataPathFromInputs(blend, datasetPrefixIn)).toEqual([
        "1.0",
        path.join(dirs[0]!, "dclm_0_text_document"),
        "1.0",
        path.join(dirs[1]!, "dclm_1_text_document"),
        "1.0",
        path.join(dirs[2]!, "dclm_2_text_document")
      ])
      const merged = { dataset: dirs[1]!, worker: "/w/flame-worker" }
      expect(dataPathFromInputs(merged, datasetPrefixIn)).toEqual(yield* stageSees(merged))
    }))

  it("previewed under Slurm: the job's srun line, placeholders for the job id and first node, the inputs known so far", () => {
    const [done] = datasets(1)
    const blends = Object.keys(train38m.inputs).filter((k) => k.startsWith("blend"))
    expect(blends.length).toBeGreaterThanOrEqual(3)
    const inputs = {
      ...Object.fromEntries(blends.map((k) => [k, { pending: `<dataset of ${train38m.inputs[k]!.stage}>` }])),
      blend0: { path: done!, exists: true },
      blend1: { path: "/ws/artifacts/tokenize/s1/0123456789abcdef/dataset", exists: false },
      worker: { pending: "<worker>" }
    }
    const plan = Either.getOrThrow(
      previewLaunch(train38m, {
        executor: "slurm",
        inputs,
        saveDir: "/ws/staging/train/flame-moe-38m/<fingerprint>"
      })
    )
    expect(plan.file).toBe("srun")
    expect(plan.args).toContain("--nodes=4")
    expect(value(plan, "--rdzv-id")).toBe("<job id>")
    expect(value(plan, "--rdzv-endpoint")).toBe("<first node>:<20000 + job id % 20000>")
    expect(flag(plan, "--data-path").slice(0, 6)).toEqual([
      "1.0",
      path.join(done!, "dclm_0_text_document"),
      "1.0",
      "/ws/artifacts/tokenize/s1/0123456789abcdef/dataset/<prefix>",
      "1.0",
      `<dataset of ${train38m.inputs.blend2!.stage}>`
    ])
    expect(value(plan, "--save")).toBe("/ws/staging/train/flame-moe-38m/<fingerprint>")
    expect(plan.env).not.toHaveProperty("CUDA_VISIBLE_DEVICES")

    // The same function runs the stage: inside the job, the placeholders are the job's values.
    const dataPath = flag(plan, "--data-path")
    const run = Either.getOrThrow(
      stageLaunch(train38m.params as MegatronStageParams, {
        stageId: train38m.id,
        dataPath,
        saveDir: "/ws/staging/train/flame-moe-38m/<fingerprint>",
        env: { SLURM_JOB_ID: "4242", SLURM_JOB_NUM_NODES: "4", SLURM_JOB_NODELIST: "gpu[012-015]" },
        runId: "unused under Slurm",
        gpus: []
      })
    )
    const differing = run.args.flatMap((word, i) => (word === plan.args[i] ? [] : [[plan.args[i], word]]))
    expect(differing).toEqual([
      ["<job id>", "4242"],
      ["<first node>:<20000 + job id % 20000>", `gpu012:${20000 + 4242}`]
    ])
    expect(run.env).toEqual(plan.env)
  })

  it("previewed on this machine: torchrun with the GPU slots it will be handed, or why it cannot start here", () => {
    const inputs = Object.fromEntries(Object.keys(train38m.inputs).map((k) => [k, { pending: `<${k}>` }]))
    const single = fullSuite([
      "train/*.backend=megatron",
      "train/flame-moe-38m.megatron.nodes=1",
      "train/flame-moe-38m.megatron.wandbProject=flame-moe"
    ]).byId.get("train/flame-moe-38m")!
    const local = Either.getOrThrow(previewLaunch(single, { executor: "local", inputs, saveDir: "/s" }))
    expect(local.file).toBe("torchrun")
    expect(local.env.CUDA_VISIBLE_DEVICES).toBe("<8 GPU slots>")
    expect(value(local, "--rdzv-id")).toBe("train/flame-moe-38m-<start time>")
    // Outside Slurm the wandb run is named after the stage.
    expect(value(local, "--wandb-exp-name")).toBe("train/flame-moe-38m")
    expect(previewLaunch(train38m, { executor: "local", inputs, saveDir: "/s" })).toEqual(
      Either.left("megatron.nodes is 4: a multi-node run needs a Slurm allocation (run with --executor slurm)")
    )
    // A layout Megatron-LM would refuse is refused when the pipeline is resolved (plan, run)...
    expect(() => fullSuite(["train/*.backend=megatron", "train/flame-moe-38m.megatron.expertParallel=3"])).toThrow(
      "stage train/flame-moe-38m, param 'megatron': Megatron-LM would refuse the layout"
    )
    // ...and the launch itself still checks params it is handed.
    const params = train38m.params as MegatronStageParams & { readonly megatron: object | undefined }
    const bad = { ...train38m, params: { ...params, megatron: { ...params.megatron, expertParallel: 3 } } }
    expect(Either.getLeft(previewLaunch(bad, { executor: "slurm", inputs, saveDir: "/s" })))
      .toEqual(expect.objectContaining({ value: expect.stringContaining("Megatron-LM layout: ") }))
  })

  it("only train stages on the Megatron backend are Megatron stages", () => {
    expect(onMegatron.stages.filter(isMegatronStage).map((s) => s.id)).toHaveLength(7)
    expect(fullSuite([]).stages.filter(isMegatronStage)).toEqual([])
  })

  it("a Megatron stage's job gets megatron.time over the global slurm.time; a stage rule of the settings wins", () => {
    const settings = Either.getOrThrow(
      slurmSettingsFromConfig({ "slurm.time": "1-00:00:00", "slurm.stage.train/flame-moe-1.7b.time": "20-00:00:00" })
    )
    const pipeline = fullSuite([
      "train/*.backend=megatron",
      "train/flame-moe-98m.megatron.time=2-00:00:00",
      "train/flame-moe-115m.megatron.time=null"
    ])
    const merged = withMegatronTimes(settings, pipeline.stages)
    const time = (id: string) => settingsForStage(merged, id).time
    expect(time("train/flame-moe-38m")).toBe("14-00:00:00")
    expect(time("train/flame-moe-98m")).toBe("2-00:00:00")
    expect(time("train/flame-moe-115m")).toBe("1-00:00:00")
    expect(time("train/flame-moe-1.7b")).toBe("20-00:00:00")
    expect(time("eval/flame-moe-38m/2121")).toBe("1-00:00:00")
    expect(withMegatronTimes(settings, fullSuite([]).stages)).toBe(settings)
  })
})
