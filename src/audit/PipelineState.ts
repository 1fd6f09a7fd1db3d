/**
 * Which recorded executions make up a pipeline's results: for each stage, in topological order, the
 * succeeded execution a run of the pipeline as defined now would reuse, found from lineage alone
 * (recorded output hashes, not the files, so a damaged artifact is still found and can be reported).
 *
 * A stage matches an execution with its current fingerprint when one is given, else one with the same
 * params consuming the same upstream hashes: the latter survives code changes (a new stage version,
 * an edited source) that would make a run re-execute the stage, which is what garbage collection
 * needs to know what a past run used.
 */
import { Effect } from "effect"
import { canonicalJson, diffParams } from "../engine/Fingerprint.ts"
import type { ArtifactRow, ExecutionRow } from "../lineage/Lineage.ts"
import type { ResolvedPipeline, ResolvedStage } from "../Pipeline.ts"
import type { Records } from "./Records.ts"
import { outputsByName } from "./Records.ts"

export type StageState =
  | {
    readonly _tag: "Resolved"
    readonly stage: ResolvedStage
    readonly execution: ExecutionRow
    readonly outputs: ReadonlyMap<string, ArtifactRow>
    readonly matchedBy: "fingerprint" | "params-and-inputs"
  }
  | {
    readonly _tag: "Unresolved"
    readonly stage: ResolvedStage
    readonly reason: string
    /** The upstream stage that could not be resolved, when that is why. */
    readonly upstream: string | null
  }

export interface WalkOptions<Err, Req> {
  /** Only executions started at or before this time count: what a past run could have used. */
  readonly before?: number | undefined
  /** The stage's fingerprint now, given its upstream output hashes; when given, an exact match wins. */
  readonly fingerprintOf?: (stage: ResolvedStage, inputHashes: Readonly<Record<string, string>>) => Effect.Effect<
    string,
    Err,
    Req
  >
}

const describeParamDifference = (recorded: unknown, current: unknown): string => {
  const changes = diffParams(recorded, current)
  if (changes.length === 0) return "same params, other inputs"
  const shown = changes.slice(0, 3).map((c) => `${c.key} ${c.from ?? "(unset)"} -> ${c.to ?? "(unset)"}`)
  return `params differ: ${shown.join(", ")}${changes.length > 3 ? ` and ${changes.length - 3} more` : ""}`
}

export const walkPipeline = <Err = never, Req = never>(
  pipeline: ResolvedPipeline,
  records: Records,
  options: WalkOptions<Err, Req> = {}
): Effect.Effect<ReadonlyArray<StageState>, Err, Req> =>
  Effect.gen(function*() {
    const states = new Map<string, StageState>()
    const out: Array<StageState> = []
    const settle = (state: StageState) => {
      states.set(state.stage.id, state)
      out.push(state)
    }
    for (const stage of pipeline.stages) {
      const inputHashes: Record<string, string> = {}
      let blocked: StageState | undefined
      for (const [name, ref] of Object.entries(stage.inputs)) {
        const up = states.get(ref.stage)
        if (up === undefined || up._tag === "Unresolved") {
          blocked = { _tag: "Unresolved", stage, reason: `upstream ${ref.stage} is not resolved`, upstream: ref.stage }
          break
        }
        const artifact = up.outputs.get(ref.output)
        if (artifact === undefined) {
          blocked = {
            _tag: "Unresolved",
            stage,
            reason: `upstream ${ref.stage} (execution ${up.execution.id.slice(0, 8)}) recorded no output ${ref.output}`,
            upstream: ref.stage
          }
          break
        }
        inputHashes[name] = artifact.hash
      }
      if (blocked !== undefined) {
        settle(blocked)
        continue
      }
      const candidates = (records.executionsByStage.get(stage.id) ?? []).filter((e) =>
        e.status === "succeeded" && (options.before === undefined || e.startedAt <= options.before)
      )
      const resolved = (execution: ExecutionRow, matchedBy: "fingerprint" | "params-and-inputs"): StageState => ({
        _tag: "Resolved",
        stage,
        execution,
        outputs: outputsByName(records, execution.id),
        matchedBy
      })
      if (options.fingerprintOf !== undefined) {
        const fp = yield* options.fingerprintOf(stage, inputHashes)
        const exact = candidates.find((e) => e.fingerprint === fp)
        if (exact !== undefined) {
          settle(resolved(exact, "fingerprint"))
          continue
        }
      }
      const params = canonicalJson(stage.encodedParams)
      const inputs = canonicalJson(inputHashes)
      const same = candidates.find((e) => canonicalJson(e.inputHashes) === inputs && canonicalJson(e.params) === params)
      if (same !== undefined) {
        settle(resolved(same, "params-and-inputs"))
        continue
      }
      const latest = candidates[0]
      settle({
        _tag: "Unresolved",
        stage,
        reason: latest === undefined
          ? "no succeeded execution recorded"
          : `no succeeded execution with the pipeline's params and inputs (latest, ${latest.id.slice(0, 8)}: ${
            describeParamDifference(latest.params, stage.encodedParams)
          })`,
        upstream: null
      })
    }
    return out
  })
