/**
 * One checkpoint's co-activation matrices, every MoE layer at once: grids of small heatmaps sharing one
 * colour scale. All layers are on the page together (nothing to click through), so a printed or saved
 * report shows them all too. Panel widths are fractions of the chart's width, so the grid follows the page
 * (a screen or a printed sheet); panel heights are fixed, and a figure holds at most two rows of panels so
 * that it fits on a printed page: a deep model's layers take several figures.
 */
import type { CoactivationResult } from "../../analysis/schema.ts"
import type { Figure } from "../model.ts"

/** Panels per row: four layers side by side still leave each 64 x 64 matrix readable on a page. */
const COLUMNS = 4
const ROWS_PER_FIGURE = 2
const PANEL_HEIGHT = 230
/** Room above a panel for its title and below it for the expert numbers. */
const TITLE_SPACE = 26
const LABEL_SPACE = 30
const TOP = 8
const LEGEND_SPACE = 64
/** Horizontal margins and gaps, in percent of the chart's width. */
const SIDE = 4
const GAP = 4

export interface CoactivationPanel {
  readonly layer: number
  /** Percent of the chart's width. */
  readonly left: number
  readonly width: number
  /** Pixels. */
  readonly top: number
  readonly height: number
}

/** Where each layer's panel goes, and the chart height that holds them all. */
export const coactivationLayout = (layers: ReadonlyArray<number>): {
  panels: ReadonlyArray<CoactivationPanel>
  height: number
} => {
  const columns = Math.max(1, Math.min(COLUMNS, layers.length))
  const rows = Math.ceil(layers.length / columns)
  const width = (100 - 2 * SIDE - (columns - 1) * GAP) / columns
  const rowHeight = TITLE_SPACE + PANEL_HEIGHT + LABEL_SPACE
  return {
    panels: layers.map((layer, i) => ({
      layer,
      left: SIDE + (i % columns) * (width + GAP),
      width,
      top: TOP + Math.floor(i / columns) * rowHeight + TITLE_SPACE,
      height: PANEL_HEIGHT
    })),
    height: TOP + rows * rowHeight + LEGEND_SPACE
  }
}

const pct = (x: number) => `${Number(x.toFixed(3))}%`

/** Non-zero cells as [column j, row i, value]: a heatmap's data. */
const cells = (m: ReadonlyArray<ReadonlyArray<number>>) => {
  const out: Array<[number, number, number]> = []
  m.forEach((row, i) => row.forEach((v, j) => v > 0 && out.push([j, i, Number(v.toPrecision(4))])))
  return out
}

/** The figures of one checkpoint's co-activation: one for a model of up to eight MoE layers. */
export const coactivationFigures = (doc: CoactivationResult, stageId: string, numbering: string): Array<Figure> => {
  const perFigure = COLUMNS * ROWS_PER_FIGURE
  // One colour scale across every figure of the checkpoint, so that panels compare across figures too.
  const max = Math.max(1e-9, ...doc.matrix.flatMap((m) => m.flat()))
  const chunks = Array.from(
    { length: Math.ceil(doc.layers.length / perFigure) },
    (_, c) => doc.layers.map((_, l) => l).slice(c * perFigure, (c + 1) * perFigure)
  )
  return chunks.map((indices) => {
    const first = doc.layers[indices[0]!]!
    const last = doc.layers[indices[indices.length - 1]!]!
    return coactivationFigure(doc, indices, max, stageId, numbering, {
      id: chunks.length === 1 ? `coactivation-${doc.scale}` : `coactivation-${doc.scale}-layers-${first}-${last}`,
      title: `Expert co-activation: ${doc.scale}, step ${doc.step}` +
        (chunks.length === 1 ? "" : `, layers ${first} to ${last}`)
    })
  })
}

const coactivationFigure = (
  doc: CoactivationResult,
  /** Indices into doc.layers of the layers this figure shows. */
  indices: ReadonlyArray<number>,
  max: number,
  stageId: string,
  numbering: string,
  name: { readonly id: string; readonly title: string }
): Figure => {
  const { height, panels } = coactivationLayout(indices.map((l) => doc.layers[l]!))
  const experts = Array.from({ length: doc.numExperts }, (_, i) => String(i))
  // Every fourth of 64 experts is labelled: 0, 16, 32, 48 on each panel.
  const interval = Math.max(0, Math.ceil(doc.numExperts / 4) - 1)
  const axis = (gridIndex: number) => ({
    type: "category",
    gridIndex,
    data: experts,
    axisTick: { show: false },
    axisLabel: { interval, fontSize: 9, color: "#5b6470" },
    splitArea: { show: false }
  })
  return {
    ...name,
    caption: `One panel per MoE layer (${numbering}). Row i, column j: tokens routed to both experts / tokens ` +
      `routed to expert i (diagonal zero), over ${doc.tokens} held-out tokens; one colour scale for all panels.`,
    sources: [stageId],
    height,
    option: {
      animation: false,
      tooltip: { position: "top", confine: true },
      title: panels.map((p) => ({
        text: `layer ${p.layer}`,
        left: pct(p.left + p.width / 2),
        top: p.top - TITLE_SPACE + 4,
        textAlign: "center",
        textStyle: { fontSize: 13, fontWeight: "bold" }
      })),
      grid: panels.map((p) => ({ left: pct(p.left), width: pct(p.width), top: p.top, height: p.height })),
      xAxis: panels.map((_, l) => axis(l)),
      yAxis: panels.map((_, l) => ({ ...axis(l), inverse: true })),
      visualMap: {
        min: 0,
        max: Number(max.toPrecision(3)),
        calculable: true,
        orient: "horizontal",
        left: "center",
        bottom: 8,
        itemHeight: 240,
        precision: 3,
        text: ["co-activation", ""],
        seriesIndex: panels.map((_, l) => l),
        inRange: { color: ["#f7fbff", "#6baed6", "#08306b"] }
      },
      series: indices.map((l, p) => ({
        type: "heatmap",
        name: `layer ${doc.layers[l]}`,
        xAxisIndex: p,
        yAxisIndex: p,
        // Drawn in one pass: ECharts would otherwise paint a 64 x 64 matrix over several frames, and a page
        // printed or captured meanwhile would show part of it.
        progressive: 0,
        data: cells(doc.matrix[l] ?? [])
      }))
    }
  }
}
