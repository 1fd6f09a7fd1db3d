/** What a run tells its caller and keeps in lineage when it ends: counts per status and every stage's outcome. */
import type { RunSummary, StageOutcome, StageStatus } from "../domain/Run.ts"
import type { ResolvedPipeline } from "../Pipeline.ts"

/**
 * The summary of a run from the outcomes recorded so far; a stage without one never got to run,
 * because the run was interrupted or stopped after a failure.
 */
export const summarizeRun = (
  pipeline: ResolvedPipeline,
  run: { readonly id: string; readonly startedAt: number },
  outcomes: ReadonlyMap<string, StageOutcome>,
  interrupted: boolean
): RunSummary => {
  const stages = pipeline.stages.map((stage) =>
    outcomes.get(stage.id) ?? {
      stage: stage.id,
      kind: stage.definition.kind,
      status: "skipped" as const,
      execution: null,
      fingerprint: null,
      durationMs: null,
      error: interrupted ? "run interrupted" : "run stopped after a failure",
      resumedFrom: null
    }
  )
  const count = (status: StageStatus) => stages.filter((s) => s.status === status).length
  const failed = count("failed")
  return {
    runId: run.id,
    pipeline: pipeline.name,
    preset: pipeline.preset,
    status: interrupted ? "interrupted" : failed > 0 ? "failed" : "succeeded",
    executed: count("executed"),
    cached: count("cached"),
    failed,
    skipped: count("skipped"),
    interrupted: count("interrupted"),
    wallMs: Date.now() - run.startedAt,
    stageMs: stages.reduce((sum, s) => sum + (s.status === "executed" ? s.durationMs ?? 0 : 0), 0),
    stages
  }
}

/** What a run keeps of its summary: the counts and the stages that did something (cached ones are implied). */
export const persistedSummary = (summary: RunSummary): Record<string, unknown> => ({
  ...summary,
  stages: summary.stages.filter((s) => s.status !== "cached")
})
