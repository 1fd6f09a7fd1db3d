/**
 * `flame-pipe job <pipeline> --spec FILE`: what a Slurm batch job runs on its compute node. Its
 * implementation (src/cli/JobCommand.ts, and the Slurm code behind it) loads only inside a job.
 */
import { Args, Command, Options } from "@effect/cli"
import { lazyHandler } from "./lazy.ts"

const config = {
  pipeline: Args.text({ name: "pipeline" }).pipe(
    Args.withDescription("the pipeline, as the run that submitted the job named it")
  ),
  spec: Options.file("spec").pipe(Options.withDescription("the job spec written by the Slurm executor"))
}

export const jobCommand = Command.make(
  "job",
  config,
  lazyHandler(() => import("../JobCommand.ts").then(({ jobCommand }) => ({ handler: jobCommand.handler })))
).pipe(Command.withDescription("run one stage inside a Slurm batch job (used by run --executor slurm)"))
