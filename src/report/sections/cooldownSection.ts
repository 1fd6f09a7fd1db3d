/**
 * The cool-down grid against the grid (docs/cooldown.md): both fits' constants side by side, the loss
 * each predicts at the compute-optimal N*(C) of every budget and their difference, the validation loss
 * of each point in both grids, and the tokens each approach planned and trained.
 */
import { isCooldownTrainStage, isGridTrainStage } from "../../scaling/cooldownRuns.ts"
import type { Figure, SectionBuilder, Table } from "../model.ts"
import { baseOption, colorOf, fmt, line, logAxis, scatter, valueAxis, yValueAxis } from "./chart.ts"
import type { CooldownComparison, FitMethod, TokenTotals } from "./cooldownComparison.ts"
import { cooldownComparison } from "./cooldownComparison.ts"

const methodName: Record<FitMethod, string> = { raw: "raw", log: "log" }

const budgetName = (flops: number) => flops.toExponential(1).replace("e+", "e")

/** Token counts in full, grouped by thousands: they are exact, and the table is where they are read. */
export const count = (n: number | null): string =>
  n === null ? "-" : String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ",")

const share = (part: number | null, whole: number): string =>
  part === null || whole === 0 ? "-" : `${(100 * part / whole).toFixed(1)}%`

const referenceName = (c: CooldownComparison): string => c.reference._tag === "grid" ? "grid" : "published"

const sourcesOf = (c: CooldownComparison): Array<string> => [
  ...(c.reference._tag === "grid" ? [c.reference.stageId] : []),
  c.cooldownStage
]

const constantsTable = (c: CooldownComparison): Table => {
  const ref = referenceName(c)
  const columns = c.methods.flatMap((m) => [`${ref} (${methodName[m.method]})`, `cool-down (${methodName[m.method]})`])
  const row = (name: string, value: (side: CooldownComparison["methods"][number]["cooldown"]) => string) => [
    name,
    ...c.methods.flatMap((m) => [value(m.reference), value(m.cooldown)])
  ]
  return {
    id: "cooldown-constants",
    title: "Fitted constants: grid and cool-down grid",
    caption: (c.reference._tag === "grid"
      ? "Each method fitted to the grid's runs and to the cool-down branches' ends."
      : "FLAME-MoE's published constants (its fit of the grid; the report covers no grid) beside the cool-down " +
        "fits; the published objective is evaluated on the cool-down runs.") +
      " Objectives are the mean Huber loss over each fit's own runs.",
    columns: ["", ...columns],
    rows: [
      row("E", (s) => fmt(s.params.E)),
      row("A", (s) => fmt(s.params.A)),
      row("alpha", (s) => fmt(s.params.alpha)),
      row("B", (s) => fmt(s.params.B)),
      row("beta", (s) => fmt(s.params.beta)),
      row("objective", (s) => fmt(s.objective)),
      row("runs", (s) => String(s.runs))
    ],
    sources: sourcesOf(c)
  }
}

const optimaTable = (c: CooldownComparison): Table => {
  const ref = referenceName(c)
  return {
    id: "cooldown-optimal",
    title: "Compute-optimal loss per budget",
    caption: "At each budget's compute C (the mean 6 N D of its runs: the branch ends train exactly the grid's " +
      "N and D), N*(C) and the loss L(N*, C / 6N*) of each fit; the difference is cool-down minus " +
      `${ref}.`,
    columns: ["budget", "C", "fit", `N* (${ref})`, "N* (cool-down)", `L* (${ref})`, "L* (cool-down)", "difference"],
    rows: c.optima.map((o) => [
      budgetName(o.flopsBudget),
      fmt(o.flops),
      methodName[o.method],
      fmt(o.reference.activeParams),
      fmt(o.cooldown.activeParams),
      fmt(o.reference.loss),
      fmt(o.cooldown.loss),
      fmt(o.difference)
    ]),
    sources: sourcesOf(c)
  }
}

const tokensTable = (c: CooldownComparison, trainStages: ReadonlyArray<string>): Table => {
  const grid = c.gridTokens
  const row = (name: string, t: TokenTotals, trained: number | null) => [
    name,
    t.stages,
    count(t.planned),
    count(t.fromScratch),
    count(trained),
    share(t.planned, grid.planned),
    share(trained, grid.planned)
  ]
  return {
    id: "cooldown-tokens",
    title: "Tokens trained",
    caption: "Planned: from the train stages' params (a grid run or constant-rate run trains all its " +
      "iterations, a branch only its anneal, from the constant-rate run's checkpoint at its anneal start). " +
      "From scratch: every stage from step 0. Trained: the executions behind the report, each from the step " +
      "it was seeded at (its result's seedIteration) to its end." +
      (grid.fromBranches ? " The report covers no grid: its tokens are the branches' lengths from scratch." : ""),
    columns: [
      "approach",
      "train stages",
      "planned",
      "from scratch",
      "trained",
      "planned / grid",
      "trained / grid"
    ],
    rows: [
      row(grid.fromBranches ? "grid (the branches from scratch)" : "grid", grid, grid.trained),
      row("cool-down", c.cooldownTokens, c.cooldownTokens.trained)
    ],
    sources: [...trainStages]
  }
}

const shapesTable = (c: CooldownComparison, trainStages: ReadonlyArray<string>): Table => ({
  id: "cooldown-tokens-by-shape",
  title: "Tokens per shape",
  caption: "Per shape (the cool-down runs' scale): the grid's tokens (its five budgets from scratch), and the " +
    "cool-down grid's, planned and trained, with their share of the grid's.",
  columns: ["shape", "grid", "cool-down planned", "cool-down trained", "planned / grid", "trained / grid"],
  rows: c.byShape.map((s) => [
    s.scale,
    count(s.grid),
    count(s.cooldown.planned),
    count(s.cooldown.trained),
    share(s.cooldown.planned, s.grid),
    share(s.cooldown.trained, s.grid)
  ]),
  sources: [...trainStages]
})

const optimaFigure = (c: CooldownComparison): Figure => {
  const ref = referenceName(c)
  const methods = [...new Set(c.optima.map((o) => o.method))]
  return {
    id: "cooldown-optimal-loss",
    title: "Compute-optimal loss: grid and cool-down fits",
    caption: `L(N*(C), C / 6N*(C)) of each fit at the budgets' compute: ${ref} solid, cool-down dashed, one ` +
      "colour per method.",
    sources: sourcesOf(c),
    option: {
      ...baseOption(true),
      xAxis: logAxis("compute C (FLOPs)"),
      yAxis: yValueAxis("predicted loss at N*(C)"),
      series: methods.flatMap((method, i) => {
        const mine = c.optima.filter((o) => o.method === method && Number.isFinite(o.reference.loss))
        const cooled = c.optima.filter((o) => o.method === method && Number.isFinite(o.cooldown.loss))
        return [
          line(`${ref} (${method})`, mine.map((o) => [o.flops, o.reference.loss] as const), {
            showSymbol: true,
            lineStyle: { color: colorOf(i) },
            itemStyle: { color: colorOf(i) }
          }),
          line(`cool-down (${method})`, cooled.map((o) => [o.flops, o.cooldown.loss] as const), {
            showSymbol: true,
            lineStyle: { type: "dashed", color: colorOf(i) },
            itemStyle: { color: colorOf(i) }
          })
        ]
      })
    }
  }
}

const pairsFigure = (c: CooldownComparison): Figure => {
  const losses = c.pairs.flatMap((p) => [p.grid, p.cooldown])
  const lo = Math.min(...losses)
  const hi = Math.max(...losses)
  return {
    id: "cooldown-loss-pairs",
    title: "Validation loss: grid run vs cool-down branch",
    caption: "Each point (shape and budget): the grid run's validation loss against the cool-down branch's, " +
      "which trained the same N and D; below the diagonal the branch is better.",
    sources: sourcesOf(c),
    option: {
      ...baseOption(true),
      xAxis: valueAxis("grid run's loss"),
      yAxis: yValueAxis("cool-down branch's loss"),
      series: [
        scatter("points", c.pairs.map((p) => [p.grid, p.cooldown] as const)),
        line("y = x", [[lo, lo], [hi, hi]], { lineStyle: { type: "dotted", color: "#888" } })
      ]
    }
  }
}

export const cooldownSection: SectionBuilder = {
  id: "cooldown",
  build: (data) => {
    const c = cooldownComparison(data)
    if (c === undefined) return undefined
    const trainStages = data.records
      .filter((r) => r.kind === "train" && (isGridTrainStage(r.stageId) || isCooldownTrainStage(r.stageId)))
      .map((r) => r.stageId)
    const figures = [optimaFigure(c), ...(c.pairs.length > 0 ? [pairsFigure(c)] : [])]
    const meanDifference = c.pairs.length === 0
      ? undefined
      : c.pairs.reduce((s, p) => s + p.cooldown - p.grid, 0) / c.pairs.length
    return {
      id: "cooldown",
      title: "Cool-down grid",
      intro: "Per shape, one constant-rate run to the latest anneal start and, per budget, a branch that " +
        "continues from its checkpoint at the budget's anneal start and anneals over the last 10% (Hägele et al. " +
        "2024), against the grid, which trains every budget from scratch. " +
        `The cool-down grid planned ${share(c.cooldownTokens.planned, c.gridTokens.planned)} of the grid's tokens` +
        (c.cooldownTokens.trained === null
          ? "."
          : ` and trained ${share(c.cooldownTokens.trained, c.gridTokens.planned)}.`) +
        (meanDifference === undefined
          ? ""
          : ` Over the ${c.pairs.length} points both grids measured, cool-down branch minus grid run: ` +
            `${fmt(meanDifference)} nats of validation loss on average.`),
      figures,
      tables: [constantsTable(c), optimaTable(c), tokensTable(c, trainStages), shapesTable(c, trainStages)]
    }
  }
}
