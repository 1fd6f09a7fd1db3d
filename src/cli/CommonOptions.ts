/**
 * Arguments and options several commands share, so that `run`, `plan`, `audit`, `report` and `gc`
 * spell them, default them and parse them the same way.
 */
import { Args, Options } from "@effect/cli"
import { detectGpus } from "../engine/Environment.ts"

export const pipelineArg = Args.text({ name: "pipeline" }).pipe(
  Args.withDescription("a pipeline name (see pipelines/) or the path of a pipeline module")
)

export const workspace = Options.directory("workspace").pipe(
  Options.withDefault("runs"),
  Options.withDescription("where artifacts, logs and lineage.sqlite live")
)

export const preset = Options.text("preset").pipe(Options.optional, Options.withDescription("a named parameter set"))

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
    Options.withDefault("auto"),
    Options.withDescription(`${description}: ids (e.g. 0,1), 'none', or 'auto' to detect with nvidia-smi`)
  )

export const resolveGpus = (spec: string): ReadonlyArray<string> =>
  spec === "auto" ? detectGpus().map((g) => g.index) : spec === "none" || spec === "" ? [] : spec.split(",")

/** `--config key=value` entries; a bare key means "true". */
export const parseConfig = (entries: ReadonlyArray<string>): Record<string, string> =>
  Object.fromEntries(entries.map((entry) => {
    const eq = entry.indexOf("=")
    return eq < 0 ? [entry, "true"] : [entry.slice(0, eq), entry.slice(eq + 1)]
  }))
