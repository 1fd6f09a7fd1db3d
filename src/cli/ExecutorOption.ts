/**
 * `--executor local|slurm`: what stages settle their params against (GPUs per node), how many may run
 * at once by default, and the layer that runs their bodies.
 */
import { Options } from "@effect/cli"
import { Effect, Either, Layer } from "effect"
import * as os from "node:os"
import * as path from "node:path"
import type { StageFailed } from "../domain/Errors.ts"
import type { Reporter } from "../engine/Reporter.ts"
import { Executor } from "../executor/Executor.ts"
import type { Lineage } from "../lineage/Lineage.ts"
import { fromRoot } from "../ProjectRoot.ts"
import { buildJobBundle } from "../slurm/JobBundle.ts"
import { slurmSettingsFromConfig } from "../slurm/Settings.ts"
import { SlurmClient } from "../slurm/SlurmClient.ts"
import { SlurmExecutor } from "../slurm/SlurmExecutor.ts"
import type { Workspace } from "../workspace/Workspace.ts"
import { isModulePath } from "./PipelineRegistry.ts"

export const executorOption = Options.choice("executor", ["local", "slurm"]).pipe(
  Options.withDefault("local" as const),
  Options.withDescription(
    "where stage bodies run: this machine, or Slurm batch jobs (settings: --config slurm.partition=..., see README)"
  )
)

export interface ChosenExecutor {
  /** GPUs stages settle against (e.g. backend auto -> cuda). */
  readonly gpus: number
  readonly defaultJobs: number
  readonly layer: (
    preset: string,
    overrides: ReadonlyArray<string>
  ) => Layer.Layer<Executor, StageFailed, Lineage | Workspace | Reporter>
}

export const chooseExecutor = (
  kind: "local" | "slurm",
  options: {
    readonly pipeline: string
    readonly config: Readonly<Record<string, string>>
    readonly gpuIds: ReadonlyArray<string>
  }
) =>
  Effect.gen(function*() {
    if (kind === "local") {
      return {
        gpus: options.gpuIds.length,
        defaultJobs: os.cpus().length,
        layer: () => Executor.local({ gpus: options.gpuIds.length })
      } satisfies ChosenExecutor
    }
    const settings = yield* Either.match(slurmSettingsFromConfig(options.config), {
      onLeft: Effect.fail,
      onRight: Effect.succeed
    })
    const client = yield* SlurmClient
    yield* client.check.pipe(
      Effect.mapError((error) => new Error(`--executor slurm needs a reachable Slurm cluster: ${error.message}`))
    )
    const gpus = settings.gpusPerNode === "auto" ? yield* client.gpusPerNode(settings.partition) : settings.gpusPerNode
    // The job resolves the pipeline itself, possibly from another working directory; a module path is
    // bundled with the CLI first (only by `run`, when the executor is built), so that jobs start fast.
    const pipeline = isModulePath(options.pipeline) ? path.resolve(options.pipeline) : options.pipeline
    const node = settings.node ?? process.execPath
    const jobCommand = isModulePath(pipeline) && process.env.FLAME_PIPE_FROM_SOURCES !== "1" ?
      Effect.map(buildJobBundle(pipeline), (bundle) => [node, bundle, "job", pipeline]) :
      Effect.succeed([node, fromRoot("bin", "flame-pipe.js"), "job", pipeline])
    return {
      gpus,
      defaultJobs: 1000,
      layer: (preset, overrides) =>
        Layer.unwrapEffect(Effect.map(jobCommand, (command) =>
          SlurmExecutor.layer({
            pipeline,
            preset,
            overrides,
            config: options.config,
            settings,
            gpusPerNode: gpus,
            jobCommand: command
          }).pipe(Layer.provide(SlurmClient.Default))))
    } satisfies ChosenExecutor
  }).pipe(Effect.provide(SlurmClient.Default))
