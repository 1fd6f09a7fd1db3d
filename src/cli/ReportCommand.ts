/**
 * `flame-pipe report <pipeline>`: one self-contained HTML report of what the pipeline has produced in a
 * workspace (training curves, evaluations, the scaling-law fit, routing analyses, lineage).
 */
import { Command, Options } from "@effect/cli"
import { Console, Effect, Layer, Option } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { latestAudit } from "../audit/Audit.ts"
import { auditExtra, auditSection } from "../audit/reportSection.ts"
import { Lineage } from "../lineage/Lineage.ts"
import { resolve } from "../Pipeline.ts"
import { renderHtml, writeReport } from "../report/html.ts"
import { pipelineReport } from "../report/pipelineReport.ts"
import { withSections } from "../report/sections/index.ts"
import { ArtifactStore } from "../store/ArtifactStore.ts"
import { ContentHasher } from "../store/ContentHasher.ts"
import { Workspace } from "../workspace/Workspace.ts"
import { config, gpus, parseConfig, pipelineArg, preset, resolveGpus, set, workspace } from "./CommonOptions.ts"
import { PipelineRegistry } from "./PipelineRegistry.ts"

const reportLayer = (workspace: string) =>
  Layer.provideMerge(
    ArtifactStore.Default,
    Layer.provideMerge(ContentHasher.Default, Layer.provideMerge(Lineage.Default, Workspace.layer(workspace)))
  )

export const reportCommand = Command.make(
  "report",
  {
    pipeline: pipelineArg,
    workspace,
    preset,
    set,
    config,
    gpus: gpus("as for run, to settle which backend the stages' fingerprints assume"),
    output: Options.file("output").pipe(
      Options.withAlias("o"),
      Options.optional,
      Options.withDescription("the HTML file to write (default: <workspace>/reports/<pipeline>-<preset>.html)")
    ),
    title: Options.text("title").pipe(Options.optional, Options.withDescription("the report's title")),
    currentOnly: Options.boolean("current-only").pipe(
      Options.withDescription("leave out stale stages instead of reporting their latest successful execution")
    ),
    json: Options.boolean("json").pipe(Options.withDescription("print what was written as JSON on stdout"))
  },
  (args) =>
    Effect.gen(function*() {
      const definition = yield* (yield* PipelineRegistry).load(args.pipeline)
      const pipeline = yield* resolve(definition, {
        preset: Option.getOrUndefined(args.preset),
        overrides: args.set,
        config: parseConfig(args.config),
        executor: { gpus: resolveGpus(args.gpus).length }
      })
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
).pipe(Command.withDescription("write a self-contained HTML report of a pipeline's results in a workspace"))
