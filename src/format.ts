/**
 * Formatting shared by every layer that prints sizes (the CLI, audit and gc summaries, report sections).
 */

/** A byte count in binary units with one decimal: `512 B`, `1.5 KB`, `3.2 GB`. */
export const formatBytes = (n: number): string => {
  const units = ["B", "KB", "MB", "GB", "TB"]
  let v = n
  let u = 0
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`
}

/** A duration for people: 850ms, 3.1s, 4m05s, 2h07m. */
export const formatMs = (ms: number): string => {
  if (ms < 1000) return `${Math.round(ms)}ms`
  const s = ms / 1000
  if (s < 60) return `${s.toFixed(1)}s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m}m${Math.round(s % 60).toString().padStart(2, "0")}s`
  return `${Math.floor(m / 60)}h${(m % 60).toString().padStart(2, "0")}m`
}
