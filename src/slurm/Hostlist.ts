/**
 * Slurm hostlists (`gpu[001-004,7],login1`, `rack[1-2]-n[1-3]`): what SLURM_JOB_NODELIST and squeue's
 * node column hold. The first host is where a multi-node job's rendezvous listens.
 */

/** Splits on commas that are not inside brackets. */
const topLevel = (list: string): Array<string> => {
  const parts: Array<string> = []
  let depth = 0
  let start = 0
  for (let i = 0; i < list.length; i++) {
    const c = list[i]
    if (c === "[") depth++
    else if (c === "]") depth--
    else if (c === "," && depth === 0) {
      parts.push(list.slice(start, i))
      start = i + 1
    }
  }
  parts.push(list.slice(start))
  return parts.filter((p) => p !== "")
}

/** `001-004,7` -> ["001", "002", "003", "004", "7"], keeping zero padding. */
const expandRange = (ranges: string): Array<string> =>
  ranges.split(",").flatMap((range) => {
    const dash = range.indexOf("-")
    if (dash < 0) return [range]
    const from = range.slice(0, dash)
    const to = range.slice(dash + 1)
    const width = from.length
    const out: Array<string> = []
    for (let n = Number(from); n <= Number(to); n++) out.push(String(n).padStart(width, "0"))
    return out
  })

const expandHost = (pattern: string): Array<string> => {
  const open = pattern.indexOf("[")
  if (open < 0) return [pattern]
  const close = pattern.indexOf("]", open)
  if (close < 0) throw new Error(`unbalanced brackets in hostlist '${pattern}'`)
  const head = pattern.slice(0, open)
  const tails = expandHost(pattern.slice(close + 1))
  return expandRange(pattern.slice(open + 1, close)).flatMap((middle) => tails.map((tail) => head + middle + tail))
}

/** Every host of a hostlist, in order. "(null)" and "" (a pending job) are empty. */
export const expandHostlist = (list: string): ReadonlyArray<string> =>
  list === "" || list === "(null)" || list === "None assigned" ? [] : topLevel(list.trim()).flatMap(expandHost)

export const firstHost = (list: string): string | undefined => expandHostlist(list)[0]
