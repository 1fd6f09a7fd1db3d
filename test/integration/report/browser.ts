/**
 * Opens a report in headless Chromium (Debian's `chromium`, driven by playwright-core) and reports what
 * each chart drew, where its y axis's title and tick labels landed, and how charts and tables fit, on
 * screen and under print media at a printed sheet's width. Chromium is required: without it this fails,
 * naming what to install.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { chromium } from "playwright-core"

export const chromiumPath = process.env.FLAME_CHROMIUM ?? "/usr/bin/chromium"

export interface Box {
  readonly x: number
  readonly y: number
  readonly width: number
  readonly height: number
}

export interface YAxisCheck {
  readonly name: string
  /** The title's box as drawn (after rotation), in the chart's pixels; null when it was not drawn. */
  readonly nameBox: Box | null
  /** Boxes of the tick labels drawn left of the plot. */
  readonly labelBoxes: ReadonlyArray<Box>
  /** Tick labels whose box intersects the title's. */
  readonly overlaps: ReadonlyArray<string>
}

export interface GridCheck {
  /** The plot area, in the chart's pixels. */
  readonly rect: Box
  /** Wholly inside the chart's canvas. */
  readonly inside: boolean
  /** Painted canvas pixels within the plot area. */
  readonly paintedPixels: number
}

export interface ChartCheck {
  readonly figure: string
  /** Data items over the chart's series as ECharts holds them after setOption. */
  readonly dataPoints: number
  readonly series: number
  /** Canvas pixels that are neither transparent nor the white background. */
  readonly paintedPixels: number
  /** Heatmap series (co-activation panels). */
  readonly heatmaps: number
  /** A timeline component (one view at a time, picked with a slider). */
  readonly timeline: boolean
  readonly yAxes: ReadonlyArray<YAxisCheck>
  readonly grids: ReadonlyArray<GridCheck>
  /** The chart element's box in the page. */
  readonly box: Box
}

export interface TableCheck {
  readonly id: string
  /** The table's full width and the width its container shows. */
  readonly scrollWidth: number
  readonly clientWidth: number
  /** Right edge of the table in the page. */
  readonly right: number
  /** The table's cell texts, row by row. */
  readonly rows: ReadonlyArray<ReadonlyArray<string>>
}

export interface LayoutCheck {
  readonly charts: ReadonlyArray<ChartCheck>
  readonly tables: ReadonlyArray<TableCheck>
  /** The page's width and the width of everything on it. */
  readonly pageWidth: number
  readonly documentWidth: number
  /** Elements that reach past the page's right edge (tag#id.class and their right edge), at most 10. */
  readonly overflowing: ReadonlyArray<string>
}

export interface PageCheck {
  readonly charts: ReadonlyArray<ChartCheck>
  readonly tables: ReadonlyArray<string>
  readonly problems: ReadonlyArray<string>
  readonly text: string
  /** The page on screen (1400 px wide). */
  readonly screen: LayoutCheck
  /** The same page under print media at an A4 sheet's width within its margins. */
  readonly print: LayoutCheck
}

/** A4's 210 mm less the report's 12 mm print margins, at CSS's 96 px per inch. */
export const PRINT_WIDTH = Math.floor(((210 - 2 * 12) / 25.4) * 96)

// What runs in the page, as page scripts (this file is compiled without the DOM's types).
const allRendered =
  "document.querySelectorAll('.chart').length === document.querySelectorAll('.chart[data-rendered=true]').length"
const nextFrames = "new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))"
/**
 * Each chart as drawn: ECharts' model for its axes and grids, zrender's display list for where each text
 * landed (the canvas holds no text nodes to measure), the canvas's pixels for what was painted.
 */
const inspectCharts = `[...document.querySelectorAll(".chart")].map((el) => {
  const chart = echarts.getInstanceByDom(el)
  const option = chart?.getOption() ?? {}
  const series = option.series ?? []
  const canvas = el.querySelector("canvas")
  const scale = canvas && canvas.clientWidth > 0 ? canvas.width / canvas.clientWidth : 1
  const pixels = canvas ? canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data : null
  const paintedIn = (x0, y0, x1, y1) => {
    if (!pixels) return 0
    let painted = 0
    const w = canvas.width
    for (let y = Math.max(0, Math.floor(y0 * scale)); y < Math.min(canvas.height, Math.ceil(y1 * scale)); y++) {
      for (let x = Math.max(0, Math.floor(x0 * scale)); x < Math.min(w, Math.ceil(x1 * scale)); x++) {
        const i = (y * w + x) * 4
        if (pixels[i + 3] > 0 && (pixels[i] < 245 || pixels[i + 1] < 245 || pixels[i + 2] < 245)) painted++
      }
    }
    return painted
  }
  const width = chart ? chart.getWidth() : 0
  const height = chart ? chart.getHeight() : 0
  const texts = chart ? chart.getZr().storage.getDisplayList(true).filter((d) => typeof d.style?.text === "string" && d.style.text !== "").map((d) => {
    const r = d.getBoundingRect().clone()
    const m = d.getComputedTransform()
    if (m) r.applyTransform(m)
    return { text: d.style.text, box: { x: r.x, y: r.y, width: r.width, height: r.height } }
  }) : []
  const intersects = (a, b) => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height
  const model = chart?.getModel()
  const grids = []
  model?.eachComponent("grid", (g) => {
    const r = g.coordinateSystem.getRect()
    grids.push({
      rect: { x: r.x, y: r.y, width: r.width, height: r.height },
      inside: r.x >= 0 && r.y >= 0 && r.x + r.width <= width + 0.5 && r.y + r.height <= height + 0.5,
      paintedPixels: paintedIn(r.x, r.y, r.x + r.width, r.y + r.height)
    })
  })
  const yAxes = []
  model?.eachComponent("yAxis", (axisModel) => {
    const name = axisModel.get("name")
    if (!name) return
    const rect = axisModel.axis.grid.getRect()
    const labels = new Set(axisModel.axis.getViewLabels().map((l) => l.formattedLabel))
    const labelBoxes = texts.filter((t) => labels.has(t.text) && t.box.x + t.box.width <= rect.x + 1 &&
      t.box.y + t.box.height >= rect.y - 12 && t.box.y <= rect.y + rect.height + 12)
    const drawn = texts.find((t) => t.text === name)
    yAxes.push({
      name,
      nameBox: drawn ? drawn.box : null,
      labelBoxes: labelBoxes.map((t) => t.box),
      overlaps: drawn ? labelBoxes.filter((t) => intersects(t.box, drawn.box)).map((t) => t.text) : []
    })
  })
  const box = el.getBoundingClientRect()
  return {
    figure: el.getAttribute("data-figure") ?? "?",
    series: series.length,
    dataPoints: series.reduce((n, s) => n + (s.data?.length ?? 0), 0),
    paintedPixels: paintedIn(0, 0, width, height),
    heatmaps: series.filter((s) => s.type === "heatmap").length,
    timeline: (option.timeline ?? []).length > 0,
    yAxes,
    grids,
    box: { x: box.left + window.scrollX, y: box.top + window.scrollY, width: box.width, height: box.height }
  }
})`
const inspectTables = `[...document.querySelectorAll(".table")].map((t) => {
  const table = t.querySelector("table")
  const container = t.querySelector(".scroll") ?? t
  return {
    id: t.id,
    scrollWidth: Math.max(table.scrollWidth, container.scrollWidth),
    clientWidth: container.clientWidth,
    right: table.getBoundingClientRect().right + window.scrollX,
    rows: [...table.querySelectorAll("tbody tr")].map((r) => [...r.children].map((c) => c.textContent))
  }
})`
const inspectLayout = `({
  charts: ${inspectCharts},
  tables: ${inspectTables},
  pageWidth: document.documentElement.clientWidth,
  documentWidth: document.documentElement.scrollWidth,
  overflowing: [...document.querySelectorAll("body *")]
    .filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
    .slice(0, 10)
    .map((e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") +
      (typeof e.className === "string" && e.className ? "." + e.className : "") + " " +
      Math.round(e.getBoundingClientRect().right))
})`

export const checkReport = async (file: string, screenshot: string): Promise<PageCheck> => {
  if (!fs.existsSync(chromiumPath)) {
    throw new Error(
      `the report test needs headless Chromium at ${chromiumPath} (Debian: apt-get install chromium; ` +
        "or point FLAME_CHROMIUM at a Chromium binary)"
    )
  }
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "fp-chromium-"))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    viewport: { width: 1400, height: 1000 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync"
    ]
  })
  const problems: Array<string> = []
  try {
    const page = await context.newPage()
    page.on("console", (m) => {
      if (m.type() === "error" || (m.type() === "warning" && m.text().includes("ECharts"))) {
        problems.push(`console ${m.type()}: ${m.text()}`)
      }
    })
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`))
    // The report is self-contained: any request beyond the file itself is a fault.
    page.on("request", (r) => {
      if (!r.url().startsWith("file://")) problems.push(`network request: ${r.url()}`)
    })
    await page.goto(`file://${path.resolve(file)}`)
    await page.waitForFunction(allRendered, undefined, { timeout: 60_000 })
    // Let ECharts finish its first paint (it renders on the next animation frames).
    await page.evaluate(nextFrames)
    const screen = (await page.evaluate(inspectLayout)) as LayoutCheck
    const tables = screen.tables.map((t) => t.id)
    const text = (await page.evaluate("document.body.innerText")) as string
    fs.mkdirSync(path.dirname(screenshot), { recursive: true })
    await page.screenshot({ path: screenshot, fullPage: true })
    // As printed: print media at the sheet's width. The charts redraw at that width (the report listens
    // for the change); what is checked is what a sheet would show.
    await page.emulateMedia({ media: "print" })
    await page.setViewportSize({ width: PRINT_WIDTH, height: 1000 })
    await page.evaluate(nextFrames)
    await page.evaluate(nextFrames)
    const print = (await page.evaluate(inspectLayout)) as LayoutCheck
    await page.screenshot({ path: screenshot.replace(/\.png$/, "-print.png"), fullPage: true })
    return { charts: screen.charts, tables, problems, text, screen, print }
  } finally {
    await context.close()
    fs.rmSync(profile, { recursive: true, force: true })
  }
}
