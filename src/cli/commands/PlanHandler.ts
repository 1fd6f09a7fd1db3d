import { Console, Effect } from "effect"
import { describeReason } from "../../domain/Plan.ts"
import { plan } from "../../engine/Planner.ts"
import { formatMs } from "../../format.ts"
import { launchPreviews, previewJson, previewText } from "../LaunchPreview.ts"
import { settlePreview } from "../PipelineSetup.ts"
import { servicesLayer } from "../Services.ts"
import type { PlanArgs } from "./Plan.ts"

export const handler = (args: PlanArgs) =>
  Effect.gen(function*() {
    const { executor, pipeline } = yield* settlePreview(args)
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
