/**
 * Report -> one self-contained HTML file: the figures' ECharts options as embedded JSON, Apache ECharts
 * itself inlined from the installed package (no network at view time), and a few lines that draw every
 * `.chart` element. Charts get `data-rendered="true"` once drawn, which the browser test waits for.
 */
import * as fs from "node:fs"
import { createRequire } from "node:module"
import type { Cell, Figure, Report, Section, Table } from "./model.ts"

const resolver = createRequire(import.meta.url)

/** The ECharts build the report inlines; its content hash is part of the report stage's fingerprint. */
export const echartsPath = (): string => resolver.resolve("echarts/dist/echarts.min.js")

export const echartsVersion = (): string =>
  (JSON.parse(fs.readFileSync(resolver.resolve("echarts/package.json"), "utf8")) as { version: string }).version

const escape = (text: string): string =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

/** JSON inside <script>: no "</script>" or "<!--" can appear once every "<" is escaped. */
const scriptJson = (value: unknown): string => JSON.stringify(value).replace(/</g, "\\u003c")

const cell = (c: Cell) => (c === null ? "" : escape(String(c)))

const renderTable = (t: Table): string =>
  `<div class="table" id="${escape(t.id)}"><h3>${escape(t.title)}</h3>` +
  (t.caption ? `<p class="caption">${escape(t.caption)}</p>` : "") +
  `<div class="scroll"><table><thead><tr>${t.columns.map((c) => `<th>${escape(c)}</th>`).join("")}</tr></thead>` +
  `<tbody>${t.rows.map((r) => `<tr>${r.map((c) => `<td>${cell(c)}</td>`).join("")}</tr>`).join("\n")}</tbody>` +
  `</table></div></div>`

const renderFigure = (f: Figure): string =>
  `<figure id="fig-${escape(f.id)}"><h3>${escape(f.title)}</h3>` +
  `<div class="chart" data-figure="${escape(f.id)}" style="height:${f.height ?? 380}px"></div>` +
  `<figcaption>${escape(f.caption)} <span class="sources">From: ${
    escape([...new Set(f.sources)].slice(0, 12).join(", "))
  }${new Set(f.sources).size > 12 ? ` and ${new Set(f.sources).size - 12} more` : ""}.</span></figcaption></figure>`

const renderSection = (s: Section): string =>
  `<section id="${escape(s.id)}"><h2>${escape(s.title)}</h2>` +
  (s.intro ? `<p>${escape(s.intro)}</p>` : "") +
  s.figures.map(renderFigure).join("\n") +
  s.tables.map(renderTable).join("\n") +
  `</section>`

const style = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1d232b; background: #fafbfc; }
header { padding: 20px 32px 12px; background: #fff; border-bottom: 1px solid #e3e6ea; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 2px 0; color: #5b6470; }
nav a { margin-right: 14px; color: #2457a6; text-decoration: none; }
main { padding: 8px 32px 40px; max-width: 1400px; }
section { margin-top: 28px; }
h2 { font-size: 19px; border-bottom: 1px solid #e3e6ea; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
figure { margin: 0 0 18px; background: #fff; border: 1px solid #e3e6ea; border-radius: 6px; padding: 8px 12px; }
figcaption, .caption { color: #5b6470; font-size: 13px; }
.sources { color: #8a929c; }
.stale { color: #8a5300; background: #fff6e0; border: 1px solid #f0d9a0; border-radius: 4px; padding: 4px 8px; }
.scroll { overflow-x: auto; max-height: 520px; overflow-y: auto; border: 1px solid #e3e6ea; border-radius: 6px; background: #fff; }
table { border-collapse: collapse; font-size: 12.5px; width: 100%; }
th, td { padding: 4px 8px; border-bottom: 1px solid #eef0f2; text-align: left; white-space: nowrap; }
th { position: sticky; top: 0; background: #f3f5f7; }
@page { margin: 12mm; }
/* On paper nothing scrolls: charts take the sheet's width, tables wrap their cells instead of overflowing. */
@media print {
  body { background: #fff; }
  header, main { padding-left: 0; padding-right: 0; }
  main { max-width: none; }
  nav { display: none; }
  figure { border: 0; padding: 0; break-inside: avoid; }
  h2, h3 { break-after: avoid; }
  .chart > div, .chart canvas { max-width: 100% !important; }
  .scroll { overflow: visible; max-height: none; border: 0; }
  table { font-size: 9.5px; width: 100%; }
  /* A cell may break anywhere (stage ids, hashes, task names are long unbroken words): a table of many
     columns then still fits the sheet, its columns narrowed instead of cut off. */
  th, td { white-space: normal; overflow-wrap: anywhere; padding: 2px 3px; }
  th { position: static; }
  tr { break-inside: avoid; }
}
`

const bootstrap = `
(function () {
  var figures = JSON.parse(document.getElementById("flame-report-figures").textContent);
  var charts = [];
  document.querySelectorAll(".chart").forEach(function (el) {
    try {
      var chart = echarts.init(el, null, { renderer: "canvas" });
      chart.setOption(figures[el.getAttribute("data-figure")]);
      charts.push(chart);
      el.setAttribute("data-rendered", "true");
    } catch (e) {
      console.error("figure " + el.getAttribute("data-figure") + ": " + e);
    }
  });
  function resize() { charts.forEach(function (c) { c.resize(); }); }
  window.addEventListener("resize", resize);
  // Printing lays the page out at the sheet's width: redraw the charts at that width.
  window.addEventListener("beforeprint", resize);
  window.addEventListener("afterprint", resize);
  if (window.matchMedia) {
    var print = window.matchMedia("print");
    if (print.addEventListener) print.addEventListener("change", resize);
    else if (print.addListener) print.addListener(resize);
  }
})();
`

const staleNote = (report: Report): string => {
  const stale = report.data.records.filter((r) => r.stale !== undefined).length
  return stale === 0 ? "" : `<p class="stale">${stale} of the ${report.data.records.length} executions reported are ` +
    `from stages that are stale now: results of their latest successful run (the Lineage section says why).</p>`
}

export const renderHtml = (report: Report): string => {
  const { data, sections } = report
  const figures = Object.fromEntries(sections.flatMap((s) => s.figures.map((f) => [f.id, f.option])))
  const echarts = fs.readFileSync(echartsPath(), "utf8")
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(data.title)}</title><style>${style}</style></head>
<body><header><h1>${escape(data.title)}</h1>
<p>Pipeline <b>${escape(data.pipeline)}</b>${
    data.preset ? `, preset <b>${escape(data.preset)}</b>` : ""
  }; ${data.records.length} executions; generated ${escape(data.generatedAt)}.</p>
${staleNote(report)}
<nav>${sections.map((s) => `<a href="#${escape(s.id)}">${escape(s.title)}</a>`).join("")}</nav></header>
<main>${sections.map(renderSection).join("\n")}</main>
<script>/* Apache ECharts ${escape(echartsVersion())}, Apache License 2.0 */
${echarts}</script>
<script type="application/json" id="flame-report-figures">${scriptJson(figures)}</script>
<script>${bootstrap}</script>
</body></html>
`
}

/** Writes the file under a temporary name and renames it into place: a reader never sees half a report. */
export const writeReport = (file: string, html: string): void => {
  const tmp = `${file}.tmp-${process.pid}`
  fs.writeFileSync(tmp, html)
  fs.renameSync(tmp, file)
}
