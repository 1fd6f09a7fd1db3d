/**
 * The report of a pipeline as it stands in a workspace: every stage whose current fingerprint has a
 * successful execution with its outputs in place (what `plan` calls fresh) is reported on. A stale stage
 * is reported from its latest successful execution, marked stale with the reason `plan` gives (unless
 * `currentOnly`); a stage that never succeeded is listed as missing.
 */
import { Effect } from "effect"
import * as path from "node:path"
import { describeReason } from "../domain/Plan.ts"
import { plan } from "../engine/Planner.ts"
import { Lineage } from "../lineage/Lineage.ts"
import type { ResolvedPipeline } from "../Pipeline.ts"
import { Workspace } from "../workspace/Workspace.ts"
import { buildReport } from "./build.ts"
import { collectRecords, factsRequests } from "./collect.ts"
import { ReportError } from "./errors.ts"
import type { Report, SectionBuilder } from "./model.ts"
import { defaultSections } from "./sections/index.ts"
import { tokenDecoderFromFile } from "./tokens.ts"

export const pipelineReport = (
  pipeline: ResolvedPipeline,
  options: {
    readonly title?: string
    readonly sections?: ReadonlyArray<SectionBuilder>
    readonly currentOnly?: boolean
    /** Passed to the section builders as ReportData.extras. */
    readonly extras?: Readonly<Record<string, unknown>>
  } = {}
) =>
  Effect.gen(function*() {
    const ws = yield* Workspace
    const lineage = yield* Lineage
    const entries = yield* plan(pipeline)
    const index = yield* lineage.successIndex()
    const why = (e: (typeof entries)[number]) => e.reasons.map(describeReason).join("; ") || "stale"
    const targets = entries.flatMap((e) => {
      if (e.status === "fresh" && e.execution !== null) {
        return [{ stageId: e.stage, kind: e.kind, executionId: e.execution }]
      }
      const latest = options.currentOnly ? undefined : index.latestByStage.get(e.stage)
      // Only an execution whose outputs are all still there is worth reporting.
      return latest && latest.artifacts.length > 0
        ? [{ stageId: e.stage, kind: e.kind, executionId: latest.execution.id, stale: why(e) }]
        : []
    })
    const reported = new Set(targets.map((t) => t.stageId))
    if (targets.length === 0) {
      return yield* new ReportError({
        where: pipeline.name,
        reason: `nothing of this pipeline has run in ${ws.root} yet (flame-pipe run ${pipeline.name} ` +
          `--preset ${pipeline.preset} --workspace ${ws.root})`
      })
    }
    const facts = yield* lineage.executionFacts(factsRequests(targets))
    const records = yield* Effect.try({
      try: () => collectRecords(facts, ws.root, targets),
      catch: (e) => e instanceof ReportError ? e : new ReportError({ where: pipeline.name, reason: String(e) })
    })
    // The pipeline's tokenizer, where a stage of it provides one (a source named tokenizer.json), decodes
    // the token ids the routing tables show.
    const tokenizer = records.find((r) => r.outputs.some((o) => o.name === "tokenizer.json"))
    const report: Report = yield* Effect.try({
      try: () =>
        buildReport({
          title: options.title ?? `${pipeline.name} (${pipeline.preset})`,
          pipeline: pipeline.name,
          preset: pipeline.preset,
          generatedAt: new Date().toISOString(),
          workspace: ws.root,
          records,
          ...(options.extras === undefined ? {} : { extras: options.extras }),
          ...(tokenizer === undefined ? {} : {
            tokens: tokenDecoderFromFile(
              path.join(ws.root, tokenizer.outputs.find((o) => o.name === "tokenizer.json")!.path),
              tokenizer.stageId
            )
          }),
          missing: entries.filter((e) => !reported.has(e.stage)).map((e) => ({
            stageId: e.stage,
            kind: e.kind,
            reason: why(e)
          }))
        }, options.sections ?? defaultSections),
      catch: (e) => e instanceof ReportError ? e : new ReportError({ where: pipeline.name, reason: String(e) })
    })
    return report
  })
