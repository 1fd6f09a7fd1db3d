/**
 * Arguments and options several commands share, so that `run`, `plan`, `audit`, `report` and `gc`
 * spell them, default them and parse them the same way. Only descriptors live here: every command's
 * help and parsing loads this module, so it must not pull in the engine.
 */
import { Args, Options } from "@effect/cli"

/**
 * An option's default, applied and shown in its help (@effect/cli's help says only "optional").
 * `shown` describes a default that is computed, e.g. "the CPU count".
 */
export const withDefault = <A>(value: A, shown: string = String(value)) => <I>(self: Options.Options<I>) =>
  self.pipe(Options.withDefault(value), Options.withDescription(`default: ${shown}`))

export const pipelineArg = Args.text({ name: "pipeline" }).pipe(
  Args.withDescription("a pipeline name (see pipelines/) or the path of a pipeline module")
)

export const workspace = Options.directory("workspace").pipe(
  Options.withDescription("where artifacts, logs and lineage.sqlite live"),
  withDefault("runs")
)

export const preset = Options.text("preset").pipe(
  Options.optional,
  Options.withDescription("a named parameter set (default: the pipeline's default preset)")
)

export const set = Options.text("set").pipe(
  Options.repeated,
  Options.withDescription("override a param: --set stage.key=value (value parsed as JSON when it parses)")
)

export const config = Options.text("config").pipe(
  Options.repeated,
  Options.withDescription(
    "a pipeline setting: --config key=value (e.g. corpus=/data/dclm, tokenizer=/data/tokenizer.json)"
  )
)

export const json = Options.boolean("json").pipe(Options.withDescription("machine-readable output on stdout"))

/** `--gpus`; what the ids are for differs per command. */
export const gpus = (description: string) =>
  Options.text("gpus").pipe(
    Options.withDescription(`${description}: ids (e.g. 0,1), 'none', or 'auto' to detect with nvidia-smi`),
    withDefault("auto")
  )

/** `--executor`; choosing one (and loading the Slurm code) is left to the command's handler. */
export const executor = Options.choice("executor", ["local", "slurm"]).pipe(
  Options.withDescription(
    "where stage bodies run: this machine, or Slurm batch jobs (settings: --config slurm.partition=..., see README)"
  ),
  withDefault("local" as const)
)

/** What `run`, `plan`, `status` and `dag` take to settle a pipeline: which one, with what, on what. */
export const pipelineOptions = { pipeline: pipelineArg, preset, set, config, executor } as const
