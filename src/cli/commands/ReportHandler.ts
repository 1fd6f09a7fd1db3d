import { Console, Effect, Layer, Option } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { latestAudit } from "../../audit/Audit.ts"
import { auditExtra, auditSection } from "../../audit/reportSection.ts"
import { renderHtml, writeReport } from "../../report/html.ts"
import { pipelineReport } from "../../report/pipelineReport.ts"
import { withSections } from "../../report/sections/index.ts"
import { ArtifactStore } from "../../store/ArtifactStore.ts"
import { ContentHasher } from "../../store/ContentHasher.ts"
import { resolveGpus, resolvePipeline } from "../PipelineSetup.ts"
import { lineageLayer } from "../Services.ts"
import type { ReportArgs } from "./Report.ts"

const reportLayer = (workspace: string) =>
  Layer.provideMerge(ArtifactStore.Default, Layer.provideMerge(ContentHasher.Default, lineageLayer(workspace)))

export const handler = (args: ReportArgs) =>
  Effect.gen(function*() {
    const pipeline = yield* resolvePipeline(args, resolveGpus(args.gpus).length)
    const report = yield* Effect.flatMap(latestAudit(pipeline.name, pipeline.preset), (audit) =>
      pipelineReport(pipeline, {
        currentOnly: args.currentOnly,
        sections: withSections([auditSection]),
        extras: Option.isSome(audit) ? { [auditExtra]: audit.value } : {},
        ...(Option.isSome(args.title) ? { title: args.title.value } : {})
      })).pipe(Effect.provide(reportLayer(args.workspace)))
    const html = renderHtml(report)
    const file = Option.getOrElse(
      args.output,
      () =>
        path.join(
          args.workspace,
          "reports",
          `${pipeline.name.replace(/[^A-Za-z0-9._-]+/g, "_")}-${pipeline.preset}.html`
        )
    )
    yield* Effect.sync(() => {
      fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true })
      writeReport(file, html)
    })
    const summary = {
      file: path.resolve(file),
      bytes: Buffer.byteLength(html),
      executions: report.data.records.length,
      stale: report.data.records.filter((r) =>
        r.stale !== undefined
      ).length,
      missing: report.data.missing.length,
      sections: report.sections.map((s) => ({ id: s.id, figures: s.figures.length, tables: s.tables.length }))
    }
    if (args.json) return yield* Console.log(JSON.stringify(summary, null, 2))
    const figures = summary.sections.reduce((n, s) => n + s.figures, 0)
    yield* Console.log(
      `wrote ${summary.file} (${(summary.bytes / 2 ** 20).toFixed(1)} MiB): ${figures} figures in ` +
        `${summary.sections.length} sections from ${summary.executions} executions` +
        (summary.stale > 0 ? `; ${summary.stale} of them stale (reported from their latest success)` : "") +
        (summary.missing > 0 ? `; ${summary.missing} stages never succeeded` : "")
    )
  })
