import { Console, Effect, Either } from "effect"
import { PipelineError } from "../../domain/Errors.ts"
import type { PipelineDefinition } from "../../Pipeline.ts"
import { toDot, toMermaid } from "../Dag.ts"
import { parseConfig, settlePreview } from "../PipelineSetup.ts"
import type { DagArgs } from "./Dag.ts"

type Preflight = NonNullable<PipelineDefinition["preflight"]>

/**
 * `dag` runs nothing: the preflight is checked as if the executor had GPUs (the data paths must still
 * exist, as the graph is built from them: one tokenize stage per corpus shard).
 */
const withoutGpuCheck = (definition: PipelineDefinition, preflight: Preflight): PipelineDefinition => ({
  ...definition,
  preflight: (ctx) =>
    preflight({ ...ctx, executor: { ...ctx.executor, gpus: Math.max(1, ctx.executor.gpus) } }).pipe(
      Effect.mapError((error) =>
        new PipelineError({
          pipeline: error.pipeline,
          reason: `${error.reason}\n\`dag\` runs nothing and needs no GPUs, but the graph is built from these ` +
            `settings (e.g. one tokenize stage per corpus shard)`
        })
      )
    )
})

export const handler = (args: DagArgs) =>
  Effect.gen(function*() {
    // The original preflight, to tell whether a run here would be refused.
    const original: { preflight?: Preflight | undefined } = {}
    const { executor, pipeline } = yield* settlePreview(args, (definition) => {
      original.preflight = definition.preflight
      return definition.preflight === undefined ? definition : withoutGpuCheck(definition, definition.preflight)
    })
    const preflight = original.preflight
    if (preflight !== undefined && executor.gpus === 0) {
      // Refused here for want of GPUs only (the data checks passed above): say what was printed.
      const ctx = { preset: pipeline.preset, config: parseConfig(args.config), executor: { gpus: executor.gpus } }
      const here = yield* Effect.either(preflight(ctx))
      if (Either.isLeft(here)) {
        yield* Console.error(
          `note: the graph is settled for an executor without GPUs (this machine's, or --gpus none), where ` +
            `\`flame-pipe run\` would refuse preset ${pipeline.preset}; --gpus 0 (any ids) or --executor slurm ` +
            `--config slurm.gpusPerNode=N prints the graph of a run on GPUs`
        )
      }
    }
    yield* Console.log(args.format === "dot" ? toDot(pipeline) : toMermaid(pipeline))
  })
