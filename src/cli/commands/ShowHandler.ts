import { Console, Effect, Either } from "effect"
import * as path from "node:path"
import { recordMatchesFingerprint } from "../../engine/Fingerprint.ts"
import { formatBytes, formatMs } from "../../format.ts"
import { Lineage } from "../../lineage/Lineage.ts"
import { describeJobs, jobRecords } from "../../slurm/JobRecords.ts"
import { Workspace } from "../../workspace/Workspace.ts"
import { launchText, loggedLaunches, previewJson } from "../LaunchPreview.ts"
import { lineageLayer } from "../Services.ts"
import type { ShowArgs } from "./Show.ts"

export const handler = (args: ShowArgs) =>
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
        ...(execution.seededFrom
          ? [`  seeded      at step ${execution.seededStep} from artifact ${execution.seededFrom}`]
          : []),
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
  }).pipe(Effect.provide(lineageLayer(args.workspace)))
