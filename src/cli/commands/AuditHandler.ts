import { Console, Effect, Layer, Option } from "effect"
import { audit } from "../../audit/Audit.ts"
import { formatAudit } from "../../audit/format.ts"
import { Reporter } from "../../engine/Reporter.ts"
import { ContentHasher } from "../../store/ContentHasher.ts"
import { parseConfig, resolveGpus } from "../PipelineSetup.ts"
import { lineageLayer } from "../Services.ts"
import type { AuditArgs } from "./Audit.ts"

const auditLayer = (workspace: string, json: boolean) =>
  Layer.mergeAll(
    Layer.provideMerge(ContentHasher.Default, lineageLayer(workspace)),
    Reporter.forStream(json ? process.stderr : process.stdout)
  )

export const handler = (args: AuditArgs) =>
  Effect.gen(function*() {
    const report = yield* audit({
      target: args.target,
      preset: Option.getOrUndefined(args.preset),
      overrides: args.set,
      config: parseConfig(args.config),
      gpus: resolveGpus(args.gpus),
      quick: args.quick,
      stages: args.stages.flatMap((s) => s.split(",")).map((s) => s.trim()).filter((s) => s !== ""),
      sample: Math.max(0, args.sample),
      seed: args.seed,
      all: args.all,
      restore: args.restore,
      wait: args.wait,
      scratch: Option.getOrUndefined(args.scratch),
      keepScratch: args.keepScratch
    }).pipe(Effect.provide(auditLayer(args.workspace, args.json)))
    yield* Console.log(args.json ? JSON.stringify(report, null, 2) : formatAudit(report))
    if (report.status !== "passed") process.exitCode = 1
  })
