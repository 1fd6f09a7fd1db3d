/**
 * What `run`, `plan`, `status`, `dag` and `report` do before their own work, in one place: read the
 * settings, settle the executor (how many GPUs stages see) and resolve the pipeline against both.
 * Loaded by their handlers only, never by the command descriptors.
 */
import { Effect, Option } from "effect"
import { detectGpus } from "../engine/Environment.ts"
import type { PipelineDefinition } from "../Pipeline.ts"
import { resolve } from "../Pipeline.ts"
import { PipelineRegistry } from "../pipeline/Registry.ts"

export const resolveGpus = (spec: string): ReadonlyArray<string> =>
  spec === "auto" ? detectGpus().map((g) => g.index) : spec === "none" || spec === "" ? [] : spec.split(",")

/** `--config key=value` entries; a bare key means "true". */
export const parseConfig = (entries: ReadonlyArray<string>): Record<string, string> =>
  Object.fromEntries(entries.map((entry) => {
    const eq = entry.indexOf("=")
    return eq < 0 ? [entry, "true"] : [entry.slice(0, eq), entry.slice(eq + 1)]
  }))

/** The pipeline options as every command that settles a pipeline parses them (see CommonOptions). */
export interface PipelineArgs {
  readonly pipeline: string
  readonly preset: Option.Option<string>
  readonly set: ReadonlyArray<string>
  readonly config: ReadonlyArray<string>
  readonly gpus: string
  readonly executor: "local" | "slurm"
}

/**
 * The executor a run uses: its module (and the Slurm code behind it) is loaded only when something
 * will run or a Slurm cluster is asked; a local preview needs nothing but the GPU count.
 */
const executorFor = (args: PipelineArgs, config: Record<string, string>, gpuIds: ReadonlyArray<string>) =>
  Effect.flatMap(
    Effect.promise(() => import("./ExecutorOption.ts")),
    ({ chooseExecutor }) => chooseExecutor(args.executor, { pipeline: args.pipeline, config, gpuIds })
  )

const previewExecutorFor = (args: PipelineArgs, config: Record<string, string>, gpuIds: ReadonlyArray<string>) =>
  args.executor === "local"
    ? Effect.succeed({ kind: args.executor, gpus: gpuIds.length })
    : Effect.flatMap(
      Effect.promise(() => import("./ExecutorOption.ts")),
      ({ chooseExecutor }) => chooseExecutor(args.executor, { pipeline: args.pipeline, config, gpuIds, preview: true })
    )

/** Resolves the named pipeline (or module) with the preset, overrides and settings given. */
export const resolvePipeline = (
  args: Omit<PipelineArgs, "executor" | "gpus">,
  executorGpus: number,
  prepare: (definition: PipelineDefinition) => PipelineDefinition = (definition) => definition
) =>
  Effect.gen(function*() {
    const registry = yield* PipelineRegistry
    const definition = prepare(yield* registry.load(args.pipeline))
    return yield* resolve(definition, {
      preset: Option.getOrUndefined(args.preset),
      overrides: args.set,
      config: parseConfig(args.config),
      executor: { gpus: executorGpus }
    })
  })

/** For `run`: the chosen executor (with the layer that runs stage bodies) and the resolved pipeline. */
export const settleRun = (args: PipelineArgs) =>
  Effect.gen(function*() {
    const gpuIds = resolveGpus(args.gpus)
    const executor = yield* executorFor(args, parseConfig(args.config), gpuIds)
    const pipeline = yield* resolvePipeline(args, executor.gpus)
    return { gpuIds, executor, pipeline }
  })

/**
 * For what runs nothing (`plan`, `status`, `dag`): the executor's kind and GPUs, and the resolved
 * pipeline. `prepare` adjusts the definition first (`dag` relaxes its preflight).
 */
export const settlePreview = (
  args: PipelineArgs,
  prepare?: (definition: PipelineDefinition) => PipelineDefinition
) =>
  Effect.gen(function*() {
    const executor = yield* previewExecutorFor(args, parseConfig(args.config), resolveGpus(args.gpus))
    const pipeline = yield* resolvePipeline(args, executor.gpus, prepare)
    return { executor, pipeline }
  })
