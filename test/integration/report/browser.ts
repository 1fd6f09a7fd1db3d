/**
 * Opens a report in headless Chromium (Debian's `chromium`, driven by playwright-core) and reports what
 * each chart drew. Chromium is required: without it this fails, naming what to install.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { chromium } from "playwright-core"

export const chromiumPath = process.env.FLAME_CHROMIUM ?? "/usr/bin/chromium"

export interface ChartCheck {
  readonly figure: string
  /** Data items over the chart's series as ECharts holds them after setOption. */
  readonly dataPoints: number
  readonly series: number
  /** Canvas pixels that are neither transparent nor the white background. */
  readonly paintedPixels: number
}

export interface PageCheck {
  readonly charts: ReadonlyArray<ChartCheck>
  readonly tables: ReadonlyArray<string>
  readonly problems: ReadonlyArray<string>
  readonly text: string
}

// What runs in the page, as page scripts (this file is compiled without the DOM's types).
const allRendered =
  "document.querySelectorAll('.chart').length === document.querySelectorAll('.chart[data-rendered=true]').length"
const nextFrames = "new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))"
const inspectCharts = `[...document.querySelectorAll(".chart")].map((el) => {
  const series = echarts.getInstanceByDom(el)?.getOption().series ?? []
  const canvas = el.querySelector("canvas")
  let painted = 0
  if (canvas) {
    const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data
    for (let i = 0; i < pixels.length; i += 4) {
      if (pixels[i + 3] > 0 && (pixels[i] < 245 || pixels[i + 1] < 245 || pixels[i + 2] < 245)) painted++
    }
  }
  return {
    figure: el.getAttribute("data-figure") ?? "?",
    series: series.length,
    dataPoints: series.reduce((n, s) => n + (s.data?.length ?? 0), 0),
    paintedPixels: painted
  }
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
    const charts = (await page.evaluate(inspectCharts)) as Array<ChartCheck>
    const tables = (await page.evaluate("[...document.querySelectorAll('.table')].map((t) => t.id)")) as Array<string>
    const text = (await page.evaluate("document.body.innerText")) as string
    fs.mkdirSync(path.dirname(screenshot), { recursive: true })
    await page.screenshot({ path: screenshot, fullPage: true })
    return { charts, tables, problems, text }
  } finally {
    await context.close()
    fs.rmSync(profile, { recursive: true, force: true })
  }
}
