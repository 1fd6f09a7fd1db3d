/**
 * The scaling law: both fits (FLAME-MoE's raw parameters and the log parameters) with their objectives,
 * iso-FLOP curves over the observed runs, compute-optimal N*(C), and predicted against observed losses.
 */
import { Schema } from "effect"
import { computeOptimal } from "../../scaling/computeOptimal.ts"
import { ScalingFitResult } from "../../scaling/schema.ts"
import { ReportError } from "../errors.ts"
import type { Figure, SectionBuilder, Table } from "../model.ts"
import { recordsOfKind } from "../model.ts"
import type { Point } from "./chart.ts"
import { baseOption, colorOf, fmt, line, logAxis, scatter, valueAxis, yLogAxis, yValueAxis } from "./chart.ts"

const decodeFit = Schema.decodeUnknownEither(ScalingFitResult)

const methodName = { raw: "raw parameters (FLAME-MoE)", log: "log parameters" } as const

const budgetName = (flops: number) => flops.toExponential(1).replace("e+", "e")

export const scalingSection: SectionBuilder = {
  id: "scaling-law",
  build: (data) => {
    const records = recordsOfKind(data, "scaling/fit")
    if (records.length === 0) return undefined
    const figures: Array<Figure> = []
    const tables: Array<Table> = []
    for (const record of records) {
      const decoded = decodeFit(record.documents["fit.json"])
      if (decoded._tag === "Left") {
        throw new ReportError({ where: `${record.stageId} output fit.json`, reason: decoded.left.message })
      }
      const fit = decoded.right
      const suffix = records.length > 1 ? `-${record.stageId.replace(/[^A-Za-z0-9]+/g, "-")}` : ""
      // Several fits (the grid's and the cool-down grid's) would otherwise show identical titles.
      const titled = (title: string) => (records.length > 1 ? `${title}: ${record.stageId}` : title)
      const sources = [record.stageId]
      const observed = fit.budgets.map((b) => ({
        budget: b,
        runs: fit.runs.filter((r) => r.flopsBudget === b.flopsBudget)
      }))
      figures.push({
        id: `scaling-iso-flop${suffix}`,
        title: titled("Iso-FLOP curves"),
        caption: "Observed validation loss against active parameters, one colour per budget; lines: L(N, C / 6N) " +
          "of the log-parameter fit (solid) and the raw-parameter fit (dashed) at each budget's compute; " +
          "diamonds (log fit) and triangles (raw fit): compute-optimal N*(C) at each budget.",
        sources,
        height: 460,
        option: {
          ...baseOption(true),
          xAxis: logAxis("active parameters N"),
          yAxis: yValueAxis("validation loss"),
          series: [
            // A budget's points and its two curves share a name, hence one colour and one legend toggle.
            ...observed.map(({ budget, runs }, i) =>
              scatter(`C ${budgetName(budget.flopsBudget)}`, runs.map((r): Point => [r.activeParams, r.loss]), {
                itemStyle: { color: colorOf(i) }
              })
            ),
            ...fit.fits.flatMap((f) =>
              f.isoFlop.map((curve, i) =>
                line(
                  `C ${budgetName(fit.budgets[i]!.flopsBudget)}`,
                  curve.points.map((q): Point => [q.activeParams, q.loss]),
                  { lineStyle: { type: f.method === "raw" ? "dashed" : "solid", width: 1.5, color: colorOf(i) } }
                )
              )
            ),
            ...fit.fits.map((f) => ({
              name: `N* (${f.method} fit)`,
              type: "scatter",
              symbol: f.method === "raw" ? "triangle" : "diamond",
              symbolSize: 13,
              data: f.computeOptimal.flatMap((o, i) =>
                Number.isFinite(o.activeParams)
                  ? [{ value: [o.activeParams, o.loss], itemStyle: { color: colorOf(i) } }]
                  : []
              )
            }))
          ]
        }
      })
      const budgets = fit.budgets.map((b) => b.flops)
      const wide = [...budgets, ...[10, 100, 1000].map((m) => Math.max(...budgets) * m)]
      figures.push({
        id: `scaling-optimal${suffix}`,
        title: titled("Compute-optimal active parameters N*(C)"),
        caption: "N*(C) = G (C/6)^(beta/(alpha+beta)) of each fit and of the published constants, at the grid's " +
          "budgets and extrapolated three decades beyond.",
        sources,
        option: {
          ...baseOption(true),
          xAxis: logAxis("compute C (FLOPs)"),
          yAxis: yLogAxis("N*(C)"),
          series: [
            ...fit.fits.map((f) =>
              line(
                `${methodName[f.method]}`,
                wide.map((c): Point => [c, computeOptimal(f.params, c).activeParams]).filter(([, n]) =>
                  Number.isFinite(n)
                ),
                { showSymbol: true }
              )
            ),
            line(
              "published",
              wide.map((c): Point => [c, computeOptimal(fit.published.params, c).activeParams]),
              { showSymbol: true, lineStyle: { type: "dotted" } }
            )
          ]
        }
      })
      const losses = fit.runs.map((r) => r.loss)
      const lo = Math.min(...losses)
      const hi = Math.max(...losses)
      figures.push({
        id: `scaling-parity${suffix}`,
        title: titled("Predicted vs observed loss"),
        caption: "Each run's observed validation loss against the loss each fit predicts for its N and D.",
        sources,
        option: {
          ...baseOption(true),
          xAxis: valueAxis("observed loss"),
          yAxis: yValueAxis("predicted loss"),
          series: [
            ...fit.fits.map((f) =>
              scatter(methodName[f.method], fit.runs.map((r, i): Point => [r.loss, f.predicted[i]!]))
            ),
            line("y = x", [[lo, lo], [hi, hi]], { lineStyle: { type: "dotted", color: "#888" } })
          ]
        }
      })
      tables.push({
        id: `scaling-fits${suffix}`,
        title: titled("Fitted constants"),
        caption: `Huber(delta ${fit.fits[0]?.delta ?? "-"}) objective, the mean over ${fit.runs.length} runs as in ` +
          "FLAME-MoE's notebook (the raw fit minimises it; our log-space fit minimises the sum); " +
          "compare fits by objective and predicted losses: A, B and alpha trade off along a ridge.",
        columns: [
          "fit",
          "E",
          "A",
          "alpha",
          "B",
          "beta",
          "objective",
          "starts converged",
          "best start (E, A, alpha, B, beta)"
        ],
        rows: [
          ...fit.fits.map((f) => [
            methodName[f.method],
            fmt(f.params.E),
            fmt(f.params.A),
            fmt(f.params.alpha),
            fmt(f.params.B),
            fmt(f.params.beta),
            fmt(f.objective),
            `${f.startsConverged} / ${f.startsTried}`,
            [f.start.E, f.start.A, f.start.alpha, f.start.B, f.start.beta].map((v) => fmt(v, 3)).join(", ")
          ]),
          [
            "published (evaluated on these runs)",
            fmt(fit.published.params.E),
            fmt(fit.published.params.A),
            fmt(fit.published.params.alpha),
            fmt(fit.published.params.B),
            fmt(fit.published.params.beta),
            fmt(fit.published.objective),
            "-",
            "-"
          ]
        ],
        sources
      })
      tables.push({
        id: `scaling-optimal-table${suffix}`,
        title: titled("Compute-optimal allocation per budget"),
        columns: [
          "budget",
          "C (mean 6ND of its runs)",
          ...fit.fits.flatMap((f) => [`N* (${f.method})`, `D* (${f.method})`])
        ],
        rows: fit.budgets.map((b, i) => [
          budgetName(b.flopsBudget),
          fmt(b.flops),
          ...fit.fits.flatMap((f) => [fmt(f.computeOptimal[i]!.activeParams), fmt(f.computeOptimal[i]!.tokens)])
        ]),
        sources
      })
    }
    return {
      id: "scaling-law",
      title: "Scaling law",
      intro: "L(N, D) = E + A / N^alpha + B / D^beta fitted by L-BFGS-B from FLAME-MoE's grid of initial guesses, " +
        "keeping the lowest Huber objective: once over the raw parameters as FLAME-MoE did, once over " +
        "(log E, log A, alpha, log B, beta), which is well conditioned.",
      figures,
      tables
    }
  }
}
