/**
 * Shared pieces of the report's ECharts options. Options are plain JSON (the report embeds them as data),
 * so labels use ECharts' string templates rather than formatter functions.
 */

export type Point = readonly [number, number | null]

/** ECharts' default palette, for series that must share a colour (a budget's points and its curves). */
export const palette = [
  "#5470c6",
  "#91cc75",
  "#fac858",
  "#ee6666",
  "#73c0de",
  "#3ba272",
  "#fc8452",
  "#9a60b4",
  "#ea7ccc"
]
export const colorOf = (i: number): string => palette[i % palette.length]!

/** At most `max` points of a curve, evenly strided, always keeping the last one. */
export const downsample = (points: ReadonlyArray<Point>, max = 1500): Array<Point> => {
  if (points.length <= max) return [...points]
  const stride = points.length / max
  const out: Array<Point> = []
  for (let i = 0; i < max; i++) out.push(points[Math.floor(i * stride)]!)
  if (out[out.length - 1] !== points[points.length - 1]) out.push(points[points.length - 1]!)
  return out
}

/**
 * The grid makes room for the tick labels whatever their width (containLabel), and above itself for the
 * legend and the y axis's title (yValueAxis puts it on top of the axis).
 */
export const baseOption = (legend: boolean): Record<string, unknown> => ({
  animation: false,
  grid: { left: 16, right: 30, top: legend ? 72 : 40, bottom: 48, containLabel: true },
  tooltip: { trigger: "item", confine: true },
  ...(legend ? { legend: { type: "scroll", top: 5, left: 10, right: 110 } } : {}),
  toolbox: {
    feature: { saveAsImage: { title: "PNG" }, dataZoom: { title: { zoom: "zoom", back: "reset" } } },
    right: 10
  }
})

export const valueAxis = (name: string, extra: Record<string, unknown> = {}) => ({
  type: "value",
  name,
  nameLocation: "middle",
  nameGap: 35,
  scale: true,
  ...extra
})

/**
 * A y axis whose title sits above the axis, reading left to right from it. Along the axis, rotated, the
 * title would need a gap wider than the tick labels, whose width depends on the values (a learning rate's
 * "0.0025" is wider than a loss's "4"): above it, no tick label can reach it.
 */
export const yValueAxis = (name: string, extra: Record<string, unknown> = {}) => ({
  type: "value",
  name,
  nameLocation: "end",
  nameGap: 14,
  nameTextStyle: { align: "left", fontWeight: "bold", color: "#3a424c" },
  scale: true,
  ...extra
})

export const yLogAxis = (name: string, extra: Record<string, unknown> = {}) =>
  yValueAxis(name, { type: "log", logBase: 10, scale: false, ...extra })

export const logAxis = (name: string, extra: Record<string, unknown> = {}) => ({
  type: "log",
  name,
  nameLocation: "middle",
  nameGap: 35,
  logBase: 10,
  ...extra
})

export const line = (name: string, data: ReadonlyArray<Point>, extra: Record<string, unknown> = {}) => ({
  name,
  type: "line",
  showSymbol: false,
  data: data.map(([x, y]) => [x, y]),
  ...extra
})

export const scatter = (name: string, data: ReadonlyArray<Point>, extra: Record<string, unknown> = {}) => ({
  name,
  type: "scatter",
  symbolSize: 7,
  data: data.map(([x, y]) => [x, y]),
  ...extra
})

/** Significant-digit formatting for tables. */
export const fmt = (x: number | null | undefined, digits = 4): string =>
  x === null || x === undefined || Number.isNaN(x) ? "-" : Math.abs(x) >= 1e6 || (x !== 0 && Math.abs(x) < 1e-3)
    ? x.toExponential(digits - 1)
    : Number(x.toPrecision(digits)).toString()

export const short = (id: string | null | undefined, n = 8): string => (id ? id.slice(0, n) : "-")

export const mean = (xs: ReadonlyArray<number>): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)

/** A stage's scale or run name, as its params carry it. */
export const labelOf = (params: unknown, fallback: string): string => {
  const p = params as { scale?: unknown; point?: unknown } | null
  return typeof p?.scale === "string" ? p.scale : typeof p?.point === "string" ? p.point : fallback
}
