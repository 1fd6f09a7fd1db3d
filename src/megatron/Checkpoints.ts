/**
 * Megatron-LM's checkpoint directory: one iter_XXXXXXX directory per save, and
 * latest_checkpointed_iteration.txt, which Megatron rewrites only once a save is complete. That file
 * is what `--load` resumes from, so a directory newer than it is a partial save, overwritten on resume.
 */
import * as fs from "node:fs"
import * as path from "node:path"

export const TRACKER = "latest_checkpointed_iteration.txt"

export const iterationDirName = (iteration: number): string => `iter_${String(iteration).padStart(7, "0")}`

/** The iteration the tracker names; undefined without one (a fresh run) or for a `release` checkpoint. */
export const trackedIteration = (saveDir: string): number | undefined => {
  try {
    const text = fs.readFileSync(path.join(saveDir, TRACKER), "utf8").trim()
    return /^\d+$/.test(text) ? Number(text) : undefined
  } catch {
    return undefined
  }
}

/** Complete checkpoints in a save directory: iteration directories up to the tracked iteration, oldest first. */
export const completeCheckpoints = (saveDir: string): ReadonlyArray<{ name: string; iteration: number }> => {
  const tracked = trackedIteration(saveDir)
  if (tracked === undefined || !fs.existsSync(saveDir)) return []
  return fs.readdirSync(saveDir)
    .filter((f) => /^iter_\d{7}$/.test(f))
    .map((name) => ({ name, iteration: Number(name.slice(5)) }))
    .filter((c) => c.iteration <= tracked && fs.statSync(path.join(saveDir, c.name)).isDirectory())
    .sort((a, b) => a.iteration - b.iteration)
}
