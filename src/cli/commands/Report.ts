/**
 * `flame-pipe report <pipeline>`: one self-contained HTML report of what the pipeline has produced in a
 * workspace (training curves, evaluations, the scaling-law fit, routing analyses, lineage).
 */
import { Command, Options } from "@effect/cli"
import { config, gpus, pipelineArg, preset, set, workspace } from "../CommonOptions.ts"
import { lazyHandler } from "./lazy.ts"

const options = {
  pipeline: pipelineArg,
  workspace,
  preset,
  set,
  config,
  gpus: gpus("as for run, to settle which backend the stages' fingerprints assume"),
  output: Options.file("output").pipe(
    Options.withAlias("o"),
    Options.optional,
    Options.withDescription("the HTML file to write (default: <workspace>/reports/<pipeline>-<preset>.html)")
  ),
  title: Options.text("title").pipe(Options.optional, Options.withDescription("the report's title")),
  currentOnly: Options.boolean("current-only").pipe(
    Options.withDescription("leave out stale stages instead of reporting their latest successful execution")
  ),
  json: Options.boolean("json").pipe(Options.withDescription("print what was written as JSON on stdout"))
}

export type ReportArgs = Command.Command.ParseConfig<typeof options>

export const reportCommand = Command.make("report", options, lazyHandler(() => import("./ReportHandler.ts"))).pipe(
  Command.withDescription("write a self-contained HTML report of a pipeline's results in a workspace")
)
