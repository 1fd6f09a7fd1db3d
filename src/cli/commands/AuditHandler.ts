import { Console, Effect, Layer, Option } from "effect"
import { audit } from "../../audit/Audit.ts"
import { formatAudit } from "../../audit/format.ts"
import { ReexecutionExecutor } from "../../audit/ReexecutionExecutor.ts"
import type { RecordedInvocation } from "../../audit/ReexecutionExecutor.ts"
import { Reporter } from "../../engine/Reporter.ts"
import { PipelineRegistry } from "../../pipeline/Registry.ts"
import { ContentHasher } from "../../store/ContentHasher.ts"
import { parseConfig, resolveGpus, settleRun } from "../PipelineSetup.ts"
import { lineageLayer } from "../Services.ts"
import type { AuditArgs } from "./Audit.ts"

const auditLayer = (workspace: string, json: boolean) =>
  Layer.mergeAll(
    Layer.provideMerge(ContentHasher.Default, lineageLayer(workspace)),
    Reporter.forStream(json ? process.stderr : process.stdout)
  )

/**
 * `--executor slurm`: re-executions run as batch jobs, through the executor `run` would set up for the
 * pipeline as the run that recorded them invoked it, with this command's settings on top (its
 * `slurm.*` ones say where the jobs go now). The local executor is the audit's own process: nothing
 * to provide.
 */
const slurmReexecution = (args: AuditArgs) =>
  Effect.gen(function*() {
    const registry = yield* PipelineRegistry
    const settings = parseConfig(args.config)
    const layer = (invocation: RecordedInvocation) =>
      Layer.unwrapEffect(
        settleRun({
          pipeline: invocation.pipeline,
          preset: Option.fromNullable(invocation.preset),
          set: invocation.overrides,
          config: Object.entries({ ...invocation.config, ...settings }).map(([key, value]) => `${key}=${value}`),
          gpus: args.gpus,
          executor: args.executor
        }).pipe(
          Effect.map(({ executor, pipeline }) => executor.layer(pipeline, invocation.overrides)),
          Effect.provideService(PipelineRegistry, registry)
        )
      )
    return ReexecutionExecutor.of({ name: args.executor, layer })
  })

export const handler = (args: AuditArgs) =>
  Effect.gen(function*() {
    const config = parseConfig(args.config)
    const gpus = resolveGpus(args.gpus)
    // Asked once before anything is read: a clear error when no cluster answers, and the GPUs per node a
    // pipeline settles against under Slurm, as `run --executor slurm` resolved it.
    const chosen = args.executor === "slurm"
      ? yield* Effect.flatMap(
        Effect.promise(() => import("../ExecutorOption.ts")),
        ({ chooseExecutor }) => chooseExecutor("slurm", { pipeline: args.target, config, gpuIds: gpus })
      )
      : undefined
    const reexecution = chosen === undefined
      ? Layer.empty
      : Layer.effect(ReexecutionExecutor, slurmReexecution(args))
    const report = yield* audit({
      target: args.target,
      preset: Option.getOrUndefined(args.preset),
      overrides: args.set,
      config,
      gpus,
      ...(chosen === undefined ? {} : { executorGpus: chosen.gpus }),
      quick: args.quick,
      stages: args.stages.flatMap((s) => s.split(",")).map((s) => s.trim()).filter((s) => s !== ""),
      sample: Math.max(0, args.sample),
      seed: args.seed,
      all: args.all,
      restore: args.restore,
      wait: args.wait,
      scratch: Option.getOrUndefined(args.scratch),
      keepScratch: args.keepScratch
    }).pipe(Effect.provide(Layer.merge(auditLayer(args.workspace, args.json), reexecution)))
    yield* Console.log(args.json ? JSON.stringify(report, null, 2) : formatAudit(report))
    if (report.status !== "passed") process.exitCode = 1
  })
