/**
 * `--executor local|slurm`: what stages settle their params against (GPUs per node), how many may run
 * at once by default, and the layer that runs their bodies. A preview (`plan`, `status`, `dag`) of the
 * Slurm executor needs no cluster when `slurm.gpusPerNode` is given: nothing is submitted.
 */
import type { Options } from "@effect/cli"
import { Effect, Either, Layer } from "effect"
import * as os from "node:os"
import * as path from "node:path"
import type { StageFailed } from "../domain/Errors.ts"
import type { Reporter } from "../engine/Reporter.ts"
import type { Executor } from "../executor/Executor.ts"
import { Recoverers } from "../executor/Executor.ts"
import { LocalExecutor, localRecoverer } from "../executor/local/LocalExecutor.ts"
import { buildJobBundle } from "../executor/remote/JobBundle.ts"
import type { Lineage } from "../lineage/Lineage.ts"
import { withMegatronTimes } from "../megatron/StageLaunch.ts"
import type { ResolvedPipeline } from "../Pipeline.ts"
import { isModulePath } from "../pipeline/Registry.ts"
import { fromRoot } from "../ProjectRoot.ts"
import { slurmSettingsFromConfig } from "../slurm/Settings.ts"
import { SlurmClient } from "../slurm/SlurmClient.ts"
import { SlurmExecutor, slurmRecoverer } from "../slurm/SlurmExecutor.ts"
import type { Workspace } from "../workspace/Workspace.ts"
import type { executor } from "./CommonOptions.ts"

/** The executors `--executor` offers, as CommonOptions declares the option (the one place it is spelled). */
export type ExecutorKind = typeof executor extends Options.Options<infer A> ? A : never

export interface ChosenExecutor {
  readonly kind: ExecutorKind
  /** GPUs stages settle against (e.g. backend auto -> cuda). */
  readonly gpus: number
  readonly defaultJobs: number
  readonly layer: (
    pipeline: ResolvedPipeline,
    overrides: ReadonlyArray<string>
  ) => Layer.Layer<Executor | Recoverers, StageFailed, Lineage | Workspace | Reporter>
}

/**
 * Every executor's cleanup after a killed run, whichever runs now: a local run after a killed Slurm
 * run cancels the jobs it left, a Slurm run stops the workers a killed local run left.
 */
export const allRecoverers = Layer.effect(Recoverers, Effect.all([localRecoverer, slurmRecoverer]))

export const chooseExecutor = (
  kind: ExecutorKind,
  options: {
    readonly pipeline: string
    readonly config: Readonly<Record<string, string>>
    readonly gpuIds: ReadonlyArray<string>
    /** Nothing will run (plan, status, dag): no cluster needed where the settings say the GPUs per node. */
    readonly preview?: boolean
  }
) =>
  Effect.gen(function*() {
    if (kind === "local") {
      return {
        kind,
        gpus: options.gpuIds.length,
        defaultJobs: os.cpus().length,
        layer: () => Layer.merge(LocalExecutor.layer({ gpus: options.gpuIds.length }), allRecoverers)
      } satisfies ChosenExecutor
    }
    const settings = yield* Either.match(slurmSettingsFromConfig(options.config), {
      onLeft: Effect.fail,
      onRight: Effect.succeed
    })
    const client = yield* SlurmClient
    const reachable = client.check.pipe(
      Effect.mapError((error) =>
        new Error(
          `--executor slurm needs a reachable Slurm cluster: ${error.message}` +
            (options.preview === true ? " (or --config slurm.gpusPerNode=N to preview without one)" : "")
        )
      )
    )
    // A preview submits nothing: given the GPUs per node, it asks the cluster nothing.
    if (options.preview !== true || settings.gpusPerNode === "auto") yield* reachable
    const gpus = settings.gpusPerNode === "auto" ? yield* client.gpusPerNode(settings.partition) : settings.gpusPerNode
    // The job resolves the pipeline itself, possibly from another working directory; a module path is
    // bundled with the CLI first (only by `run`, when the executor is built), so that jobs start fast.
    const pipeline = isModulePath(options.pipeline) ? path.resolve(options.pipeline) : options.pipeline
    const node = settings.node ?? process.execPath
    const jobCommand = isModulePath(pipeline) && process.env.FLAME_PIPE_FROM_SOURCES !== "1" ?
      Effect.map(buildJobBundle(pipeline), (bundle) => [node, bundle, "job", pipeline]) :
      Effect.succeed([node, fromRoot("bin", "flame-pipe.js"), "job", pipeline])
    return {
      kind,
      gpus,
      defaultJobs: 1000,
      layer: (resolved, overrides) =>
        Layer.unwrapEffect(Effect.map(jobCommand, (command) =>
          SlurmExecutor.layer({
            pipeline,
            preset: resolved.preset,
            overrides,
            config: options.config,
            // A Megatron stage's job takes its megatron.time unless a stage rule of the settings says otherwise.
            settings: withMegatronTimes(settings, resolved.stages),
            gpusPerNode: gpus,
            jobCommand: command
          }).pipe(Layer.provide(SlurmClient.Default), Layer.merge(allRecoverers))))
    } satisfies ChosenExecutor
  }).pipe(Effect.provide(SlurmClient.Default))
