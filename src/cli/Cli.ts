/**
 * The command line: parse arguments, build the services for the chosen workspace, call them, print.
 */
import { Args, Command, Options } from "@effect/cli"
import { Console, Effect, Either, Layer, Option } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { PipelineError } from "../domain/Errors.ts"
import { describeReason } from "../domain/Plan.ts"
import type { RunSummary } from "../domain/Run.ts"
import { recordMatchesFingerprint } from "../engine/Fingerprint.ts"
import { plan } from "../engine/Planner.ts"
import { formatMs, Reporter } from "../engine/Reporter.ts"
import { run } from "../engine/Runner.ts"
import { Executor } from "../executor/Executor.ts"
import { Lineage } from "../lineage/Lineage.ts"
import type { PipelineDefinition } from "../Pipeline.ts"
import { resolve } from "../Pipeline.ts"
import { describeJobs, jobRecords } from "../slurm/JobRecords.ts"
import { ArtifactStore } from "../store/ArtifactStore.ts"
import { ContentHasher } from "../store/ContentHasher.ts"
import { Workspace } from "../workspace/Workspace.ts"
import { auditCommand } from "./AuditCommand.ts"
import {
  config,
  gpus as gpusOption,
  json,
  parseConfig,
  pipelineArg,
  preset,
  resolveGpus,
  set,
  workspace
} from "./CommonOptions.ts"
import { toDot, toMermaid } from "./Dag.ts"
import { chooseExecutor, executorOption } from "./ExecutorOption.ts"
import { gcCommand, pinCommand, unpinCommand } from "./GcCommand.ts"
import { jobCommand } from "./JobCommand.ts"
import { launchPreviews, launchText, loggedLaunches, previewJson, previewText } from "./LaunchPreview.ts"
import { formatBytes, lineageTree } from "./LineageView.ts"
import { PipelineRegistry } from "./PipelineRegistry.ts"
import { reportCommand } from "./ReportCommand.ts"

/** Every service a command needs, for one workspace. */
export const servicesLayer = <E = never>(
  workspace: string,
  reporter: Layer.Layer<Reporter> = Reporter.silent,
  executor: Layer.Layer<Executor, E, Lineage | Workspace | Reporter> = Executor.local()
) => {
  const base = Layer.provideMerge(Lineage.Default, Workspace.layer(workspace))
  const hasher = Layer.provideMerge(ContentHasher.Default, base)
  return Layer.provideMerge(executor, Layer.mergeAll(Layer.provideMerge(ArtifactStore.Default, hasher), reporter))
}

const gpus = gpusOption("GPUs to hand out to stages")

const resolvePipeline = (
  name: string,
  presetName: Option.Option<string>,
  overrides: ReadonlyArray<string>,
  configEntries: ReadonlyArray<string>,
  executorGpus: number
) =>
  Effect.gen(function*() {
    const registry = yield* PipelineRegistry
    const definition = yield* registry.load(name)
    return yield* resolve(definition, {
      preset: Option.getOrUndefined(presetName),
      overrides,
      config: parseConfig(configEntries),
      executor: { gpus: executorGpus }
    })
  })

/**
 * A pipeline for `dag`, which runs nothing: its preflight checked as if the executor had GPUs (the data
 * paths must still exist, as the graph is built from them: one tokenize stage per corpus shard), and
 * the original preflight, to tell whether a run here would be refused.
 */
const previewDefinition = (definition: PipelineDefinition) => {
  const preflight = definition.preflight
  if (preflight === undefined) return { definition, preflight }
  return {
    preflight,
    definition: {
      ...definition,
      preflight: (ctx: Parameters<typeof preflight>[0]) =>
        preflight({ ...ctx, executor: { ...ctx.executor, gpus: Math.max(1, ctx.executor.gpus) } }).pipe(
          Effect.mapError((error) =>
            new PipelineError({
              pipeline: error.pipeline,
              reason: `${error.reason}\n\`dag\` runs nothing and needs no GPUs, but the graph is built from these ` +
                `settings (e.g. one tokenize stage per corpus shard)`
            })
          )
        )
    }
  }
}

const summaryLine = (summary: RunSummary) =>
  `${summary.status}: ${summary.executed} executed, ${summary.cached} cached, ${summary.failed} failed, ` +
  `${summary.skipped} skipped, ${summary.interrupted} interrupted in ${formatMs(summary.wallMs)} (run ${
    summary.runId.slice(0, 8)
  })`

const printSummary = (summary: RunSummary) => Console.log(summaryLine(summary))

const runCommand = Command.make(
  "run",
  {
    pipeline: pipelineArg,
    workspace,
    preset,
    set,
    config,
    json,
    gpus,
    executor: executorOption,
    jobs: Options.integer("jobs").pipe(
      Options.withAlias("j"),
      Options.optional,
      Options.withDescription("stages running at once (default: the CPU count; 1000 jobs with --executor slurm)")
    ),
    cpus: Options.integer("cpus").pipe(
      Options.withDefault(os.cpus().length),
      Options.withDescription("CPU slots shared by running stages")
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
  },
  (args) =>
    Effect.gen(function*() {
      const gpuIds = resolveGpus(args.gpus)
      const executor = yield* chooseExecutor(args.executor, {
        pipeline: args.pipeline,
        config: parseConfig(args.config),
        gpuIds
      })
      const pipeline = yield* resolvePipeline(args.pipeline, args.preset, args.set, args.config, executor.gpus)
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
        argv: process.argv.slice(2)
      }).pipe(
        Effect.provide(
          servicesLayer(
            args.workspace,
            Reporter.forStream(args.json ? process.stderr : process.stdout),
            executor.layer(pipeline, args.set)
          )
        )
      )
      if (args.json) yield* Console.log(JSON.stringify(summary, null, 2))
      else yield* printSummary(summary)
      if (summary.status !== "succeeded") process.exitCode = 1
    })
).pipe(Command.withDescription("run what is stale in a pipeline, and only that"))

const planCommand = Command.make(
  "plan",
  { pipeline: pipelineArg, workspace, preset, set, config, json, gpus, executor: executorOption },
  (args) =>
    Effect.gen(function*() {
      const executor = yield* chooseExecutor(args.executor, {
        pipeline: args.pipeline,
        config: parseConfig(args.config),
        gpuIds: resolveGpus(args.gpus),
        preview: true
      })
      const pipeline = yield* resolvePipeline(args.pipeline, args.preset, args.set, args.config, executor.gpus)
      const { entries, launches } = yield* Effect.gen(function*() {
        const entries = yield* plan(pipeline)
        return { entries, launches: yield* launchPreviews(pipeline, entries, executor.kind) }
      }).pipe(Effect.provide(servicesLayer(args.workspace)))
      if (args.json) {
        const stages = entries.map((entry) => {
          const launch = launches.get(entry.stage)
          return launch === undefined ? entry : { ...entry, launch: previewJson(launch) }
        })
        return yield* Console.log(JSON.stringify({ pipeline: pipeline.name, preset: pipeline.preset, stages }, null, 2))
      }
      const stale = entries.filter((e) => e.status === "stale")
      const lines = entries.flatMap((entry) => {
        if (entry.status === "fresh") return [`fresh  ${entry.stage}`]
        const cost = entry.estimatedMs === null ? "" : ` (~${formatMs(entry.estimatedMs)})`
        const launch = launches.get(entry.stage)
        return [
          `STALE  ${entry.stage}${cost}: ${entry.reasons.map(describeReason).join("; ")}`,
          ...(launch === undefined ? [] : previewText(launch).map((line) => `         ${line}`))
        ]
      })
      yield* Console.log(lines.join("\n"))
      const known = stale.reduce((sum, e) => sum + (e.estimatedMs ?? 0), 0)
      const unknown = stale.filter((e) => e.estimatedMs === null).length
      yield* Console.log(
        `${stale.length} of ${entries.length} stages would run` +
          (stale.length > 0 ? `; estimated ${formatMs(known)} of recorded work` : "") +
          (unknown > 0 ? ` plus ${unknown} never timed` : "")
      )
    })
).pipe(
  Command.withDescription(
    "what a run would execute, and why; for a Megatron stage, the command it would launch (placeholders for what only the run knows)"
  )
)

const statusCommand = Command.make(
  "status",
  { pipeline: pipelineArg, workspace, preset, set, config, gpus, executor: executorOption },
  (args) =>
    Effect.gen(function*() {
      const { gpus: executorGpus } = yield* chooseExecutor(args.executor, {
        pipeline: args.pipeline,
        config: parseConfig(args.config),
        gpuIds: resolveGpus(args.gpus),
        preview: true
      })
      const pipeline = yield* resolvePipeline(args.pipeline, args.preset, args.set, args.config, executorGpus)
      const { entries, last } = yield* Effect.gen(function*() {
        const lineage = yield* Lineage
        return { entries: yield* plan(pipeline), last: yield* lineage.latestRun(pipeline.name) }
      }).pipe(Effect.provide(servicesLayer(args.workspace)))
      if (last) {
        yield* Console.log(
          `last run ${last.id.slice(0, 8)}: ${last.status}, started ${new Date(last.startedAt).toISOString()}` +
            (last.endedAt ? `, took ${formatMs(last.endedAt - last.startedAt)}` : "")
        )
      } else {
        yield* Console.log("never run in this workspace")
      }
      const fresh = entries.filter((e) => e.status === "fresh").length
      yield* Console.log(`${fresh} of ${entries.length} stages fresh`)
      for (const entry of entries.filter((e) => e.status === "stale")) {
        yield* Console.log(`  stale ${entry.stage}: ${entry.reasons.map(describeReason).join("; ")}`)
      }
    })
).pipe(Command.withDescription("the state of a pipeline in a workspace"))

const lineageCommand = Command.make(
  "lineage",
  {
    target: Args.text({ name: "target" }).pipe(
      Args.withDescription("a stage id, an execution id, or an artifact (id, content hash prefix or path)")
    ),
    workspace,
    down: Options.boolean("down").pipe(Options.withDescription("show what was derived from the target instead"))
  },
  (args) =>
    Effect.gen(function*() {
      const lines = yield* lineageTree(args.target, args.down ? "down" : "up").pipe(
        Effect.provide(Layer.provideMerge(Lineage.Default, Workspace.layer(args.workspace)))
      )
      yield* Console.log(lines.join("\n"))
    })
).pipe(Command.withDescription("where an artifact came from (or, with --down, what came of it)"))

const dagCommand = Command.make(
  "dag",
  {
    pipeline: pipelineArg,
    preset,
    set,
    config,
    format: Options.choice("format", ["mermaid", "dot"]).pipe(Options.withDefault("mermaid" as const)),
    gpus: gpusOption("GPUs of the executor the graph is settled for (no GPU is needed to print it)"),
    executor: executorOption
  },
  (args) =>
    Effect.gen(function*() {
      const config = parseConfig(args.config)
      const executor = yield* chooseExecutor(args.executor, {
        pipeline: args.pipeline,
        config,
        gpuIds: resolveGpus(args.gpus),
        preview: true
      })
      const definition = yield* (yield* PipelineRegistry).load(args.pipeline)
      const ctx = {
        preset: Option.getOrElse(args.preset, () => definition.defaultPreset),
        config,
        executor: { gpus: executor.gpus }
      }
      const preview = previewDefinition(definition)
      const pipeline = yield* resolve(preview.definition, {
        preset: ctx.preset,
        overrides: args.set,
        config,
        executor: ctx.executor
      })
      if (preview.preflight !== undefined && executor.gpus === 0) {
        // Refused here for want of GPUs only (the data checks passed above): say what was printed.
        const here = yield* Effect.either(preview.preflight(ctx))
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
).pipe(
  Command.withDescription(
    "print the pipeline's DAG as Mermaid or Graphviz dot; needs no GPUs (a preview: its data paths must exist)"
  )
)

const showCommand = Command.make(
  "show",
  {
    execution: Args.text({ name: "execution" }).pipe(
      Args.withDescription("an execution id (or prefix), or a stage id")
    ),
    workspace,
    json
  },
  (args) =>
    Effect.gen(function*() {
      const lineage = yield* Lineage
      const byStage = yield* lineage.latestExecutionOfStage(args.execution)
      const matches = byStage ? [byStage] : yield* lineage.execution(args.execution)
      if (matches.length !== 1) {
        return yield* Effect.fail(
          new Error(matches.length === 0 ? `no execution '${args.execution}'` : `'${args.execution}' is ambiguous`)
        )
      }
      const execution = matches[0]!
      const outputs = yield* lineage.artifactsOf(execution.id)
      const inputs = yield* lineage.inputsOf(execution.id)
      const environment = execution.environmentId ? yield* lineage.environment(execution.environmentId) : undefined
      const metrics = yield* lineage.metricsOf(execution.id)
      const slurmJobs = yield* Effect.flatMap(jobRecords, (jobs) => jobs.ofExecution(execution.id))
      // A Megatron stage's launch as its log recorded it; the latest, when a requeued job launched again.
      const launch = loggedLaunches(path.resolve((yield* Workspace).root, execution.logPath)).at(-1)
      const lastMetric = new Map<string, { step: number; value: number | null; count: number }>()
      for (const m of metrics) {
        const prev = lastMetric.get(m.name)
        if (!prev || m.step >= prev.step) {
          lastMetric.set(m.name, { step: m.step, value: m.value, count: (prev?.count ?? 0) + 1 })
        } else prev.count++
      }
      if (args.json) {
        return yield* Console.log(
          JSON.stringify(
            {
              execution,
              recordMatchesFingerprint: recordMatchesFingerprint(execution),
              inputs,
              outputs,
              environment,
              metrics: Object.fromEntries(lastMetric),
              slurmJobs,
              ...(launch === undefined ? {} : { launch: previewJson(Either.right(launch.plan)) })
            },
            null,
            2
          )
        )
      }
      yield* Console.log(
        [
          `execution ${execution.id}`,
          `  stage       ${execution.stageId}`,
          `  status      ${execution.status}${execution.exitCode === null ? "" : ` (exit ${execution.exitCode})`}`,
          `  started     ${new Date(execution.startedAt).toISOString()}`,
          `  duration    ${execution.durationMs === null ? "-" : formatMs(execution.durationMs)}`,
          `  fingerprint ${execution.fingerprint}${
            recordMatchesFingerprint(execution)
              ? ""
              : "  (ALTERED: the recorded params, inputs or worker no longer hash to it; never served from the cache)"
          }`,
          `  version     ${execution.version}`,
          `  worker      ${execution.workerHash ?? "-"}`,
          `  log         ${execution.logPath}`,
          ...(execution.resumedFrom ? [`  resumed     ${execution.resumedFrom}`] : []),
          `  params      ${JSON.stringify(execution.params)}`,
          "  inputs",
          ...inputs.map((i) => `    ${i.name}: ${i.artifact.path} ${i.artifact.hash.slice(0, 12)}`),
          "  outputs",
          ...outputs.map((o) => `    ${o.name}: ${o.path} ${o.hash.slice(0, 12)} ${formatBytes(o.size)}`),
          ...(lastMetric.size > 0
            ? [
              "  metrics (last value)",
              ...[...lastMetric].map(([n, m]) => `    ${n} = ${m.value} @ ${m.step} (${m.count} points)`)
            ]
            : []),
          ...(environment
            ? [
              "  environment",
              `    commit ${environment.gitCommit ?? "-"}${
                environment.gitDirty ? " (dirty)" : ""
              }, node ${environment.nodeVersion}, ${environment.platform}`,
              ...Object.entries(environment.compilers).map(([k, v]) => `    ${k}: ${v}`),
              ...environment.gpus.map((g) => `    gpu: ${g.name} (driver ${g.driver})`)
            ]
            : []),
          ...describeJobs(slurmJobs),
          ...(launch === undefined ? [] : ["  launch", ...launchText(launch.plan).map((line) => `    ${line}`)]),
          ...(execution.error ? [`  error       ${JSON.stringify(execution.error)}`] : [])
        ].join("\n")
      )
    }).pipe(Effect.provide(Layer.provideMerge(Lineage.Default, Workspace.layer(args.workspace))))
).pipe(Command.withDescription("details of one execution: params, inputs, outputs, metrics, environment"))

export const command = Command.make("flame-pipe").pipe(
  Command.withDescription("FLAME-MoE's lifecycle as a typed, cached DAG"),
  Command.withSubcommands([
    runCommand,
    planCommand,
    statusCommand,
    lineageCommand,
    dagCommand,
    showCommand,
    jobCommand,
    auditCommand,
    gcCommand,
    pinCommand,
    unpinCommand,
    reportCommand
  ])
)

export const cli = Command.run(command, { name: "flame-pipe", version: "0.1.0" })
