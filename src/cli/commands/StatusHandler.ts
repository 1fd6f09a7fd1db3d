import { Console, Effect } from "effect"
import { describeReason } from "../../domain/Plan.ts"
import { plan } from "../../engine/Planner.ts"
import { formatMs } from "../../format.ts"
import { Lineage } from "../../lineage/Lineage.ts"
import { settlePreview } from "../PipelineSetup.ts"
import { servicesLayer } from "../Services.ts"
import type { StatusArgs } from "./Status.ts"

export const handler = (args: StatusArgs) =>
  Effect.gen(function*() {
    const { pipeline } = yield* settlePreview(args)
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
