import { Console, Effect, Option } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { RunSummary } from "../../domain/Run.ts"
import { Reporter } from "../../engine/Reporter.ts"
import { run } from "../../engine/Runner.ts"
import { formatMs } from "../../format.ts"
import { isModulePath } from "../../pipeline/Registry.ts"
import { parseConfig, settleRun } from "../PipelineSetup.ts"
import { servicesLayer } from "../Services.ts"
import type { RunArgs } from "./Run.ts"

export const summaryLine = (summary: RunSummary) =>
  `${summary.status}: ${summary.executed} executed, ${summary.cached} cached, ${summary.failed} failed, ` +
  `${summary.skipped} skipped, ${summary.interrupted} interrupted in ${formatMs(summary.wallMs)} (run ${
    summary.runId.slice(0, 8)
  })`

export const handler = (args: RunArgs) =>
  Effect.gen(function*() {
    const { executor, gpuIds, pipeline } = yield* settleRun(args)
    const summary = yield* run(pipeline, {
      preset: pipeline.preset,
      jobs: Option.getOrElse(args.jobs, () => executor.defaultJobs),
      cpus: args.cpus,
      gpus: gpuIds,
      keepGoing: args.keepGoing,
      wait: args.wait,
      verify: args.verify,
      // Written synchronously: the interruption is about to end the process.
      onInterrupted: (summary) =>
        fs.writeSync(1, args.json ? `${JSON.stringify(summary, null, 2)}\n` : `${summaryLine(summary)}\n`),
      overrides: args.set,
      argv: process.argv.slice(2),
      recorded: {
        pipeline: isModulePath(args.pipeline) ? path.resolve(args.pipeline) : args.pipeline,
        config: parseConfig(args.config),
        executorGpus: executor.gpus
      }
    }).pipe(
      Effect.provide(
        servicesLayer(
          args.workspace,
          Reporter.forStream(args.json ? process.stderr : process.stdout),
          executor.layer(pipeline, args.set)
        )
      )
    )
    yield* Console.log(args.json ? JSON.stringify(summary, null, 2) : summaryLine(summary))
    if (summary.status !== "succeeded") process.exitCode = 1
  })
