/**
 * suite/table: final validation loss and evaluation scores per scale, as Markdown and JSON.
 */
import { Effect, Schema } from "effect"
import * as fs from "node:fs"
import { StageFailed } from "../src/domain/Errors.ts"
import { define } from "../src/Stage.ts"
import type { EvalResult } from "./eval.ts"

const fmt = (x: number | undefined, digits = 3) => (x === undefined || Number.isNaN(x) ? "-" : x.toFixed(digits))

export const renderTable = (rows: ReadonlyArray<EvalResult>): string => {
  const tasks = [...new Set(rows.flatMap((r) => Object.keys(r.tasks)))]
  const header = ["scale", "step", "val loss", "val ppl", ...tasks.flatMap((t) => [`${t} acc`, `${t} acc_norm`])]
  const lines = [
    `| ${header.join(" | ")} |`,
    `|${header.map(() => "---").join("|")}|`,
    ...rows.map((r) =>
      `| ${
        [
          r.scale,
          String(r.step),
          fmt(r.validationLoss),
          fmt(r.validationPerplexity, 1),
          ...tasks.flatMap((t) => [fmt(r.tasks[t]?.acc.value), fmt(r.tasks[t]?.accNorm?.value)])
        ].join(" | ")
      } |`
    )
  ]
  return lines.join("\n") + "\n"
}

export const suiteTable = define({
  kind: "suite/table",
  version: "1",
  params: Schema.Struct({ scales: Schema.Array(Schema.String) }),
  outputs: () => ({ "table.md": "file", "table.json": "file" }),
  result: Schema.Struct({ rows: Schema.Number }),
  reproducibility: { _tag: "bitwise" },
  run: (ctx) =>
    Effect.try({
      try: () => {
        const rows = ctx.params.scales.map((scale) => {
          const file = ctx.inputs[scale]
          if (file === undefined) throw new Error(`no final evaluation wired for scale ${scale}`)
          const { docs: _docs, ...row } = JSON.parse(fs.readFileSync(file, "utf8")) as EvalResult & { docs: unknown }
          return row
        })
        fs.writeFileSync(ctx.output("table.md"), renderTable(rows))
        fs.writeFileSync(ctx.output("table.json"), JSON.stringify(rows, null, 2) + "\n")
        return { rows: rows.length }
      },
      catch: (e) => new StageFailed({ stage: ctx.stageId, reason: String(e) })
    })
})
