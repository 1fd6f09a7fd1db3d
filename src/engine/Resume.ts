/**
 * A stale stage that an interrupted execution with the same fingerprint left half done is not "never
 * run": it resumes, from what that execution kept in staging. Plan and run say so in the same words.
 */
import * as fs from "node:fs"
import type { StaleReason } from "../domain/Plan.ts"
import type { ResolvedStage } from "../Pipeline.ts"

export const withResumption = (
  stage: ResolvedStage,
  reasons: ReadonlyArray<StaleReason>,
  unfinished: { readonly id: string } | undefined,
  stagingDir: string
): ReadonlyArray<StaleReason> => {
  if (unfinished === undefined) return reasons
  const from = fs.existsSync(stagingDir) ? stage.definition.resumePoint?.(stagingDir) : undefined
  return [
    ...reasons.filter((r) => r._tag !== "NeverRun"),
    { _tag: "Resumable", execution: unfinished.id, ...(from === undefined ? {} : { from }) }
  ]
}
