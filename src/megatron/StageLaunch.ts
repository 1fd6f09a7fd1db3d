/**
 * The launch of a Megatron `train` stage, from its params and where it runs: one function for the run
 * itself (train.ts) and for `plan`, which shows the launch before anything ran. In a preview, what
 * only the run will know is a placeholder: the Slurm job id, its first node, the GPU slots the local
 * executor hands out, the output of an upstream stage that has not run yet.
 */
import { Either } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { SlurmSettings, SlurmStageRule } from "../domain/Slurm.ts"
import type { MegatronTraining } from "./Arguments.ts"
import { flattenArguments, layoutProblems, pretrainArguments } from "./Arguments.ts"
import type { LaunchPlan } from "./Launch.ts"
import { launchPlan, placeholder } from "./Launch.ts"
import type { MegatronParams } from "./Params.ts"
import { defaultMegatronParams } from "./Params.ts"

/** What of a train stage's params the launch reads (structurally the stage's params). */
export interface MegatronStageParams extends MegatronTraining {
  readonly megatron?: MegatronParams | undefined
}

export interface LaunchSite {
  readonly stageId: string
  /** --data-path: one prefix, or FLAME-MoE's "1.0 P1 1.0 P2 ..." blend. */
  readonly dataPath: ReadonlyArray<string>
  /** Megatron's --save and --load: the stage's staging directory. */
  readonly saveDir: string
  /** The environment the stage runs in: SLURM_JOB_ID and the node list inside a Slurm job. */
  readonly env: Readonly<Record<string, string | undefined>>
  /** The rendezvous id outside Slurm (inside, the job id). */
  readonly runId: string
  /** GPU ids the local executor handed out (exported as CUDA_VISIBLE_DEVICES); none under Slurm. */
  readonly gpus: ReadonlyArray<string>
}

/** The launch of a stage, or why Megatron-LM would refuse it (layout) or it cannot start here. */
export const stageLaunch = (p: MegatronStageParams, site: LaunchSite): Either.Either<LaunchPlan, string> => {
  const m = p.megatron ?? defaultMegatronParams
  const problems = layoutProblems(p, m)
  if (problems.length > 0) return Either.left(`Megatron-LM layout: ${problems.join("; ")}`)
  const args = flattenArguments(
    pretrainArguments(p, m, {
      dataPath: site.dataPath,
      saveDir: site.saveDir,
      runName: site.env.SLURM_JOB_ID ?? site.stageId
    })
  )
  return Either.map(launchPlan(m, args, site.env, { runId: site.runId }), (plan) =>
    // The local executor hands out GPU slots; under Slurm the job's GPUs are already in the environment.
    site.gpus.length > 0 ? { ...plan, env: { CUDA_VISIBLE_DEVICES: site.gpus.join(","), ...plan.env } } : plan)
}

/** The tokenized dataset's prefix in an output directory (its one PREFIX.idx), as the tokenize stages write it. */
export const datasetPrefixIn = (dir: string): string => {
  const idx = fs.readdirSync(dir).filter((f) => f.endsWith(".idx")).sort()
  if (idx.length !== 1) throw new Error(`expected one .idx file in ${dir}, found ${idx.length}`)
  return path.join(dir, idx[0]!.slice(0, -4))
}

/**
 * --data-path from a train stage's dataset inputs, as the stage computes it: `blend0`, `blend1`, ...
 * (one tokenized shard each) give "1.0 P0 1.0 P1 ...", else the one `dataset`.
 */
export const dataPathFromInputs = <A>(
  inputs: Readonly<Record<string, A>>,
  prefixOf: (input: A) => string
): ReadonlyArray<string> => {
  const blend = Object.keys(inputs)
    .filter((k) => /^blend\d+$/.test(k))
    .sort((a, b) => Number(a.slice(5)) - Number(b.slice(5)))
  return blend.length > 0
    ? blend.flatMap((k) => ["1.0", prefixOf(inputs[k]!)])
    : inputs.dataset === undefined
    ? []
    : [prefixOf(inputs.dataset)]
}

/** A resolved stage that runs Megatron-LM: a `train` stage with `backend: megatron`. */
export const isMegatronStage = (stage: { readonly definition: { readonly kind: string }; readonly params: unknown }) =>
  stage.definition.kind === "train" && (stage.params as { readonly backend?: unknown }).backend === "megatron"

/**
 * Slurm settings with `megatron.time` of each Megatron stage as a rule for that stage, placed before
 * the settings' own rules: it wins over the global `slurm.time`, a `slurm.stage.<glob>.time` over it.
 */
export const withMegatronTimes = (
  settings: SlurmSettings,
  stages: ReadonlyArray<
    { readonly id: string; readonly definition: { readonly kind: string }; readonly params: unknown }
  >
): SlurmSettings => {
  const rules: ReadonlyArray<SlurmStageRule> = stages.flatMap((stage) => {
    if (!isMegatronStage(stage)) return []
    const time = ((stage.params as MegatronStageParams).megatron ?? defaultMegatronParams).time
    // Stage ids hold no '*': the id matches that stage only.
    return time === null ? [] : [{ match: stage.id, time }]
  })
  return rules.length === 0 ? settings : { ...settings, stages: [...rules, ...settings.stages] }
}

/** Where an input of a previewed stage will be: its path, or undefined while its producer has not run. */
export type PreviewInput = { readonly path: string; readonly exists: boolean } | { readonly pending: string }

/**
 * The launch `plan` shows for a Megatron stage that would run: as it would start on the executor
 * (`srun` inside the Slurm job, torchrun on this machine), with placeholders for what only the run knows.
 */
export const previewLaunch = (
  stage: { readonly id: string; readonly params: unknown },
  where: {
    readonly executor: "local" | "slurm"
    readonly inputs: Readonly<Record<string, PreviewInput>>
    readonly saveDir: string
  }
): Either.Either<LaunchPlan, string> => {
  const p = stage.params as MegatronStageParams
  const m = p.megatron ?? defaultMegatronParams
  const prefixOf = (input: PreviewInput): string =>
    !("path" in input)
      ? input.pending
      : input.exists
      ? datasetPrefixIn(input.path)
      : path.join(input.path, placeholder("prefix"))
  let dataPath: ReadonlyArray<string>
  try {
    dataPath = dataPathFromInputs(where.inputs, prefixOf)
  } catch (e) {
    return Either.left(e instanceof Error ? e.message : String(e))
  }
  return stageLaunch(p, {
    stageId: stage.id,
    dataPath,
    saveDir: where.saveDir,
    env: where.executor === "slurm"
      ? {
        SLURM_JOB_ID: placeholder("job id"),
        SLURM_JOB_NUM_NODES: String(m.nodes),
        SLURM_JOB_NODELIST: placeholder("first node")
      }
      : {},
    runId: `${stage.id}-${placeholder("start time")}`,
    gpus: where.executor === "slurm" ? [] : [placeholder(`${m.gpusPerNode} GPU slots`)]
  })
}
