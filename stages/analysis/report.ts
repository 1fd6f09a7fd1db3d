/**
 * The report stage: one self-contained HTML file (src/report) over the stages wired to it. Its inputs are
 * named by the stage they come from. The engine hands it the lineage facts of the execution that produced
 * each (params, result, metrics such as the training curves, environment, and the executions those
 * consumed, for the lineage section) as a file in its staging directory: the body never opens the lineage
 * database, so it runs the same on a compute node. What it reports is fixed by its inputs' content hashes
 * (training is bitwise reproducible, so equal checkpoints mean equal loss curves); the facts are not part
 * of its fingerprint. One more input, `tokenizer` when wired, is the run's tokenizer.json: it decodes the
 * token ids the specialization tables show.
 */
import { Effect, Schema } from "effect"
import * as fs from "node:fs"
import { StageFailed } from "../../src/domain/Errors.ts"
import { readLineageFacts } from "../../src/lineage/reportFacts.ts"
import { buildReport } from "../../src/report/build.ts"
import { collectRecords, reportMetrics } from "../../src/report/collect.ts"
import { echartsPath, renderHtml } from "../../src/report/html.ts"
import type { ReportData } from "../../src/report/model.ts"
import { tokenDecoderFromFile } from "../../src/report/tokens.ts"
import type { OutputRef, StageNode } from "../../src/Stage.ts"
import { define, node, ref } from "../../src/Stage.ts"
import { checkpointName } from "../train.ts"

/** The input that carries the run's tokenizer.json; every other input is a reported stage's output. */
export const TOKENIZER_INPUT = "tokenizer"

export const ReportParams = Schema.Struct({
  title: Schema.String,
  pipeline: Schema.String,
  preset: Schema.NullOr(Schema.String),
  /** The kind of each reported stage, by stage id (= input name). */
  kinds: Schema.Record({ key: Schema.String, value: Schema.String })
})

const kindOf = (params: typeof ReportParams.Type, input: string): string => params.kinds[input] ?? "unknown"

export const report = define({
  kind: "report",
  // 2: layers named by Megatron's 1-based numbers (src/analysis/layerNumber.ts).
  // 3: routing over training, co-activation of every layer at once, decoded tokens, print layout.
  version: "3",
  params: ReportParams,
  outputs: () => ({ "report.html": "file" }),
  result: Schema.Struct({
    sections: Schema.Array(Schema.String),
    figures: Schema.Number,
    tables: Schema.Number,
    executions: Schema.Number,
    bytes: Schema.Number
  }),
  sources: () => [echartsPath()],
  // The tokenizer is reported on like the other inputs: the lineage section names its execution.
  lineageFacts: (params, inputs) =>
    Object.fromEntries(inputs.map((input) => [input, reportMetrics(kindOf(params, input))])),
  // The HTML carries the time it was generated, so no two renderings are byte-identical: a re-execution
  // must cover the same executions with the same figures and tables.
  reproducibility: { _tag: "tolerance", metrics: { figures: 0, tables: 0, executions: 0 } },
  run: (ctx) =>
    Effect.flatMap(readLineageFacts(ctx), (facts) =>
      Effect.try({
        try: () => {
          const targets = Object.keys(ctx.inputs).map((name) => {
            const producer = facts.producers[name]
            if (producer === undefined) throw new Error(`input ${name}: the lineage facts do not name its producer`)
            return { stageId: producer.stageId, kind: kindOf(ctx.params, name), executionId: producer.executionId }
          })
          const tokenizerFile = ctx.inputs[TOKENIZER_INPUT]
          const tokenizerStage = facts.producers[TOKENIZER_INPUT]?.stageId
          const data: ReportData = {
            title: ctx.params.title,
            pipeline: ctx.params.pipeline,
            preset: ctx.params.preset,
            generatedAt: new Date().toISOString(),
            workspace: facts.workspace,
            records: collectRecords(facts.executions, facts.workspace, targets),
            missing: [],
            ...(tokenizerFile === undefined || tokenizerStage === undefined
              ? {}
              : { tokens: tokenDecoderFromFile(tokenizerFile, tokenizerStage) })
          }
          const built = buildReport(data)
          const html = renderHtml(built)
          fs.writeFileSync(ctx.output("report.html"), html)
          return {
            sections: built.sections.map((s) => s.id),
            figures: built.sections.reduce((n, s) => n + s.figures.length, 0),
            tables: built.sections.reduce((n, s) => n + s.tables.length, 0),
            executions: data.records.length,
            bytes: Buffer.byteLength(html)
          }
        },
        catch: (e) => new StageFailed({ stage: ctx.stageId, reason: e instanceof Error ? e.message : String(e) })
      }))
})

/** The output a report reads of each stage kind it knows; stages of other kinds are not wired to it. */
const reportedOutput = (n: StageNode): string | undefined => {
  switch (n.definition.kind) {
    case "train":
      return typeof n.params.trainIters === "number" ? checkpointName(n.params.trainIters) : undefined
    case "eval":
      return "eval.json"
    case "ablation/validation-loss":
      return "val.json"
    case "scaling/fit":
      return "fit.json"
    case "analysis/router-saturation":
      return "saturation.json"
    case "analysis/load-balance":
      return "load-balance.json"
    case "analysis/expert-coactivation":
      return "coactivation.json"
    case "analysis/expert-specialization":
      return "specialization.json"
    case "analysis/specialization-tracking":
      return "specialization-tracking.json"
    default:
      return undefined
  }
}

/**
 * A report stage over every reportable stage among `nodes` (training: its final checkpoint), decoding
 * token ids with `tokenizer` (the run's tokenizer.json) when given.
 */
export const reportNode = (options: {
  readonly id: string
  readonly title: string
  readonly pipeline: string
  readonly preset: string
  readonly nodes: ReadonlyArray<StageNode>
  readonly tokenizer?: OutputRef
}): StageNode => {
  const inputs: Record<string, OutputRef> = {}
  const kinds: Record<string, string> = {}
  for (const n of options.nodes) {
    const output = reportedOutput(n)
    if (output === undefined) continue
    if (n.id === TOKENIZER_INPUT) {
      throw new Error(`report ${options.id}: a stage may not be named '${TOKENIZER_INPUT}' (the tokenizer's input)`)
    }
    inputs[n.id] = ref(n.id, output)
    kinds[n.id] = n.definition.kind
  }
  if (options.tokenizer !== undefined) {
    const tokenizer = options.tokenizer
    inputs[TOKENIZER_INPUT] = tokenizer
    kinds[TOKENIZER_INPUT] = options.nodes.find((n) => n.id === tokenizer.stage)?.definition.kind ?? "source"
  }
  return node(report, {
    id: options.id,
    params: { title: options.title, pipeline: options.pipeline, preset: options.preset, kinds },
    inputs
  })
}
