/**
 * Where a resumable stage would continue from: the newest complete checkpoint in its staging
 * directory. The executor only names it (to say what a resubmission resumes from, and whether an
 * attempt got anywhere); the stage itself finds it again when it runs.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { trackedIteration } from "../../megatron/Checkpoints.ts"

const ITERATION = /^iter_(\d{7})$/

/**
 * The last of the stage's declared outputs, in the order declared (checkpoints by iteration), that is
 * in the staging directory. The worker renames a checkpoint into place once it is complete; Megatron
 * writes its iteration directory first and its tracker (latest_checkpointed_iteration.txt) once the
 * save is complete, so where there is a tracker, an iteration directory newer than it is a partial
 * save and does not count.
 */
export const newestCheckpoint = (workDir: string, outputNames: ReadonlyArray<string>): string | undefined => {
  const tracked = trackedIteration(workDir)
  let newest: string | undefined
  for (const name of outputNames) {
    const iteration = ITERATION.exec(name)
    if (tracked !== undefined && iteration !== null && Number(iteration[1]) > tracked) continue
    if (fs.existsSync(path.join(workDir, name))) newest = name
  }
  return newest
}
