/**
 * `flame-pipe job <pipeline> --spec FILE`: what a Slurm batch job runs on its compute node.
 * Not meant to be typed by hand; the Slurm executor writes the spec and the batch script.
 */
import { Args, Command, Options } from "@effect/cli"
import { stageJob } from "../executor/remote/JobRunner.ts"

export const jobCommand = Command.make(
  "job",
  {
    pipeline: Args.text({ name: "pipeline" }).pipe(
      Args.withDescription("the pipeline, as the run that submitted the job named it")
    ),
    spec: Options.file("spec").pipe(Options.withDescription("the job spec written by the Slurm executor"))
  },
  (args) => stageJob(args.spec)
).pipe(Command.withDescription("run one stage inside a Slurm batch job (used by run --executor slurm)"))
