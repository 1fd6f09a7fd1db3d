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
