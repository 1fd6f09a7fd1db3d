/**
 * `flame-pipe run`: run what is stale in a pipeline, and only that.
 */
import { Command, Options } from "@effect/cli"
import * as os from "node:os"
import { gpus, json, pipelineOptions, withDefault, workspace } from "../CommonOptions.ts"
import { lazyHandler } from "./lazy.ts"

const config = {
  ...pipelineOptions,
  workspace,
  json,
  gpus: gpus("GPUs to hand out to stages"),
  jobs: Options.integer("jobs").pipe(
    Options.withAlias("j"),
    Options.optional,
    Options.withDescription("stages running at once (default: the CPU count; 1000 jobs with --executor slurm)")
  ),
  cpus: Options.integer("cpus").pipe(
    Options.withDescription("CPU slots shared by running stages"),
    withDefault(os.cpus().length, `the CPU count (${os.cpus().length})`)
  ),
  keepGoing: Options.boolean("keep-going").pipe(
    Options.withDescription("after a failure, continue the branches that do not depend on it")
  ),
  wait: Options.boolean("wait").pipe(Options.withDescription("wait for another run on this workspace to finish")),
  verify: Options.boolean("verify").pipe(
    Options.withDescription(
      "reread every cached output and source the run consumes instead of trusting size and mtime " +
        "(finds bit rot; a damaged output is rebuilt)"
    )
  )
}

export type RunArgs = Command.Command.ParseConfig<typeof config>

export const runCommand = Command.make("run", config, lazyHandler(() => import("./RunHandler.ts"))).pipe(
  Command.withDescription("run what is stale in a pipeline, and only that")
)
