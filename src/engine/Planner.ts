/**
 * `plan`: what a run would do, and why, without running anything.
 */
import { Effect } from "effect"
import type { PlanEntry, StaleReason } from "../domain/Plan.ts"
import { Lineage } from "../lineage/Lineage.ts"
import type { ResolvedPipeline } from "../Pipeline.ts"
import { ArtifactStore } from "../store/ArtifactStore.ts"
import { ContentHasher } from "../store/ContentHasher.ts"
import { Workspace } from "../workspace/Workspace.ts"
import { liveHolder } from "../workspace/WorkspaceLock.ts"
import type { InputArtifact } from "./Freshness.ts"
import { decide, freshnessProbe, gatherInputs, outputsOf } from "./Freshness.ts"
import { withResumption } from "./Resume.ts"
import type { PlannedStates } from "./Seeding.ts"
import { chooseSeed, intactWith, prefixesOf, seededReason } from "./Seeding.ts"

export const plan = (pipeline: ResolvedPipeline) =>
  Effect.gen(function*() {
    const lineage = yield* Lineage
    const index = yield* lineage.successIndex()
    const probe = yield* freshnessProbe()
    const store = yield* ArtifactStore
    // Without a live run, executions still marked running were left by a killed one and will resume.
    const runLive = liveHolder((yield* Workspace).lock) !== undefined
    const outputs = new Map<string, ReadonlyMap<string, InputArtifact>>()
    const entries: Array<PlanEntry> = []
    /** Stale stages with states to share, in order: a later one may start from what they will write. */
    const planned: Array<PlannedStates> = []
    const intact = intactWith(probe.check)
    for (const stage of pipeline.stages) {
      const estimate = index.latestByStage.get(stage.id)?.execution.durationMs ?? null
      const inputs = gatherInputs(stage, outputs)
      if (inputs === undefined) {
        // An upstream will rerun: this stage's inputs, and so its fingerprint, are not known yet.
        const reasons: Array<StaleReason> = stage.upstream.filter((up) =>
          Object.values(stage.inputs).some((ref) => ref.stage === up && outputs.get(up)?.get(ref.output) === undefined)
        ).map((up) => ({ _tag: "UpstreamStale", stage: up }))
        entries.push({
          stage: stage.id,
          kind: stage.definition.kind,
          status: "stale",
          reasons,
          fingerprint: null,
          estimatedMs: estimate,
          execution: null
        })
        continue
      }
      const decision = yield* decide(stage, inputs, index, probe)
      if (decision._tag === "Fresh") {
        outputs.set(stage.id, outputsOf(decision.entry))
        entries.push({
          stage: stage.id,
          kind: stage.definition.kind,
          status: "fresh",
          reasons: [],
          fingerprint: decision.fingerprint,
          estimatedMs: null,
          execution: decision.entry.execution.id
        })
      } else {
        const unfinished = stage.definition.resumable
          ? yield* lineage.lastUnfinished(decision.fingerprint, { includeRunning: !runLive })
          : undefined
        const reasons = withResumption(
          stage,
          decision.reasons,
          unfinished,
          store.stagingDir(stage.id, decision.fingerprint)
        )
        const prefixes = prefixesOf(stage, decision)
        const seed = prefixes === undefined
          ? undefined
          : chooseSeed(prefixes, yield* lineage.prefixCandidates(prefixes.family), planned, intact)
        if (prefixes !== undefined) planned.push({ stage: stage.id, prefixes })
        // The outputs it will reuse are known now (equal prefixes, equal bytes): what reads only those
        // can be decided, and stays fresh when nothing else changed.
        const reused = new Map<string, InputArtifact>()
        for (const { output, source } of seed?.reused ?? []) {
          if (source._tag === "Recorded") {
            const { hash, id, path } = source.candidate.artifact
            reused.set(output, { id, path, hash })
          }
        }
        if (reused.size > 0) outputs.set(stage.id, reused)
        entries.push({
          stage: stage.id,
          kind: stage.definition.kind,
          status: "stale",
          reasons: seed === undefined ? reasons : [...reasons, seededReason(seed)],
          fingerprint: decision.fingerprint,
          // Only the steps after the seed are left to compute.
          estimatedMs: seed === undefined || estimate === null
            ? estimate
            : Math.round(estimate * (seed.total - seed.step) / seed.total),
          execution: null
        })
      }
    }
    // What was hashed to answer stays known: the next plan or run need not read those files again.
    yield* (yield* ContentHasher).flush
    return entries
  })
