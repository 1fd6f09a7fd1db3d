/**
 * A recorded run's pipeline, resolved again: the pipeline it named, with the preset, `--set`
 * overrides, `--config` settings and executor GPUs it recorded, so that the stage graph, params and
 * settled backends are the ones that run used. Runs recorded before runs kept their settings have
 * only their command line, which is parsed for them.
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { detectGpus } from "../engine/Environment.ts"
import type { RunRow } from "../lineage/Lineage.ts"
import { resolve } from "../Pipeline.ts"
import { isModulePath, PipelineRegistry } from "../pipeline/Registry.ts"
import { projectRoot } from "../ProjectRoot.ts"
import type { Records } from "./Records.ts"

/** `run` options that take a value; anything else starting with `-` is a flag. */
const VALUE_OPTIONS = new Set([
  "--workspace",
  "--preset",
  "--set",
  "--config",
  "--gpus",
  "--jobs",
  "-j",
  "--cpus",
  "--executor"
])

/** What the command line of a run recorded before runs kept their settings says. */
export interface RecordedCommand {
  readonly pipeline: string
  readonly config: Readonly<Record<string, string>>
  readonly gpus: string | undefined
}

/** The pipeline argument and settings of a recorded `flame-pipe run ...` command line. */
export const parseRunArgv = (argv: ReadonlyArray<string>, recordedName: string): RecordedCommand => {
  const positionals: Array<string> = []
  const config: Record<string, string> = {}
  let gpus: string | undefined
  const tokens = argv[0] === "run" ? argv.slice(1) : [...argv]
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!
    if (!token.startsWith("-")) {
      positionals.push(token)
      continue
    }
    const eq = token.indexOf("=")
    const name = eq > 0 && token.startsWith("--") ? token.slice(0, eq) : token
    if (!VALUE_OPTIONS.has(name)) continue
    const value = eq > 0 && token.startsWith("--") ? token.slice(eq + 1) : tokens[++i]
    if (value === undefined) continue
    if (name === "--config") {
      const at = value.indexOf("=")
      if (at < 0) config[value] = "true"
      else config[value.slice(0, at)] = value.slice(at + 1)
    }
    if (name === "--gpus") gpus = value
  }
  const pipeline = positionals.find((p) => p === recordedName) ?? positionals.find(isModulePath) ?? recordedName
  return { pipeline, config, gpus }
}

/** A module path as recorded: relative to where the run started (unknown), so tried here and at the project root. */
const locate = (pipeline: string): string => {
  if (!isModulePath(pipeline) || path.isAbsolute(pipeline) || fs.existsSync(pipeline)) return pipeline
  const fromRoot = path.join(projectRoot, pipeline)
  return fs.existsSync(fromRoot) ? fromRoot : pipeline
}

/** How a run was started, as it recorded it or, for an older run, as its command line says. */
export interface RunSettings {
  readonly pipeline: string
  readonly config: Readonly<Record<string, string>>
  /** GPUs the stages settled against, where the run recorded them; else the `--gpus` its command line gave. */
  readonly gpus:
    | { readonly _tag: "Recorded"; readonly count: number }
    | { readonly _tag: "CommandLine"; readonly spec: string | undefined }
}

export const runSettings = (run: RunRow): RunSettings => {
  let parsed: RecordedCommand | undefined
  const commandLine = () => (parsed ??= parseRunArgv(run.argv, run.pipeline))
  return {
    pipeline: run.pipelineSource ?? commandLine().pipeline,
    config: run.config ?? commandLine().config,
    gpus: run.executorSettings === null
      ? { _tag: "CommandLine", spec: commandLine().gpus }
      : { _tag: "Recorded", count: run.executorSettings.gpus }
  }
}

const gpuCount = (spec: string | undefined, run: RunRow, records: Records): number => {
  if (spec !== undefined && spec !== "auto") return spec === "none" || spec === "" ? 0 : spec.split(",").length
  // `auto` meant what that machine had: its executions' environment snapshots say.
  for (const execution of records.executions.values()) {
    if (execution.runId !== run.id || execution.environmentId === null) continue
    const environment = records.environments.get(execution.environmentId)
    if (environment !== undefined) return environment.gpus.length
  }
  return detectGpus().length
}

export const resolveRecordedRun = (run: RunRow, records: Records) =>
  Effect.gen(function*() {
    const registry = yield* PipelineRegistry
    const settings = runSettings(run)
    const definition = yield* registry.load(locate(settings.pipeline))
    const overrides = Object.entries(run.overrides).map(([key, value]) => `${key}=${String(value)}`)
    return yield* resolve(definition, {
      preset: run.preset ?? undefined,
      overrides,
      config: settings.config,
      executor: {
        gpus: settings.gpus._tag === "Recorded" ? settings.gpus.count : gpuCount(settings.gpus.spec, run, records)
      }
    })
  })
