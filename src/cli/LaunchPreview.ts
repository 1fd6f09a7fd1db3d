/**
 * The launch command of Megatron stages in `plan` (what a run would start) and `show` (what it
 * started, read back from the stage's log), as the log records it: `$ export ...` then
 * `$ (cd DIR) srun|torchrun ...`. In text, a long --data-path list is shortened (FLAME-MoE's blend
 * names every shard); `--json` has every word.
 */
import { Effect, Either } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { PlanEntry } from "../domain/Plan.ts"
import { Lineage } from "../lineage/Lineage.ts"
import type { LaunchPlan, LoggedLaunch } from "../megatron/Launch.ts"
import { launchesFromLog, launchLines, placeholder } from "../megatron/Launch.ts"
import type { PreviewInput } from "../megatron/StageLaunch.ts"
import { isMegatronStage, previewLaunch } from "../megatron/StageLaunch.ts"
import type { ResolvedPipeline } from "../Pipeline.ts"
import { ArtifactStore } from "../store/ArtifactStore.ts"
import { stageDir, Workspace } from "../workspace/Workspace.ts"

/** What `plan` shows for one stale Megatron stage: its launch, or why it could not start. */
export type LaunchPreview = Either.Either<LaunchPlan, string>

/** The launch of every stale Megatron stage of a plan, by stage id. */
export const launchPreviews = (
  pipeline: ResolvedPipeline,
  entries: ReadonlyArray<PlanEntry>,
  executor: "local" | "slurm"
) =>
  Effect.gen(function*() {
    const lineage = yield* Lineage
    const store = yield* ArtifactStore
    const ws = yield* Workspace
    const byStage = new Map(entries.map((e) => [e.stage, e]))
    const previews = new Map<string, LaunchPreview>()
    for (const entry of entries) {
      const stage = pipeline.byId.get(entry.stage)
      if (entry.status !== "stale" || stage === undefined || !isMegatronStage(stage)) continue
      const inputs: Record<string, PreviewInput> = {}
      for (const [name, ref] of Object.entries(stage.inputs)) {
        const upstream = byStage.get(ref.stage)
        const recorded = upstream?.status === "fresh" && upstream.execution !== null
          ? (yield* lineage.artifactsOf(upstream.execution)).find((a) => a.name === ref.output)
          : undefined
        inputs[name] = recorded !== undefined
          ? { path: store.absolute(recorded.path), exists: true }
          : upstream?.fingerprint != null
          // Where the upstream's output will be once it ran: its fingerprint is known already.
          ? { path: path.join(store.finalDir(ref.stage, upstream.fingerprint), ref.output), exists: false }
          : { pending: placeholder(`${ref.output} of ${ref.stage}`) }
      }
      const saveDir = entry.fingerprint !== null
        ? store.stagingDir(stage.id, entry.fingerprint)
        : path.join(ws.staging, stageDir(stage.id), placeholder("fingerprint"))
      previews.set(stage.id, previewLaunch(stage, { executor, inputs, saveDir }))
    }
    return previews
  })

/** A --data-path list longer than this is shortened in text output to its first DATA_PATH_WORDS words. */
const DATA_PATH_MAX = 16
const DATA_PATH_WORDS = 4

/** The launch lines for text output: a --data-path list longer than a few words is shortened. */
export const launchText = (plan: LaunchPlan): ReadonlyArray<string> => {
  const at = plan.args.indexOf("--data-path")
  if (at < 0) return launchLines(plan)
  let end = at + 1
  while (end < plan.args.length && !plan.args[end]!.startsWith("--")) end++
  const count = end - at - 1
  if (count <= DATA_PATH_MAX) return launchLines(plan)
  return launchLines({
    ...plan,
    args: [
      ...plan.args.slice(0, at + 1 + DATA_PATH_WORDS),
      placeholder(`${count - DATA_PATH_WORDS} more words of ${count}: --json has them all`),
      ...plan.args.slice(end)
    ]
  })
}

export const previewText = (preview: LaunchPreview): ReadonlyArray<string> =>
  Either.match(preview, {
    onLeft: (reason) => [`cannot launch: ${reason}`],
    onRight: launchText
  })

export const previewJson = (preview: LaunchPreview) =>
  Either.match(preview, {
    onLeft: (reason) => ({ error: reason }),
    onRight: (plan) => ({ cwd: plan.cwd, env: plan.env, command: [plan.file, ...plan.args] })
  })

/** The launches an execution's log records (a Megatron stage's; none for others), oldest first. */
export const loggedLaunches = (logPath: string): ReadonlyArray<LoggedLaunch> => {
  try {
    return launchesFromLog(fs.readFileSync(logPath, "utf8"))
  } catch {
    return []
  }
}
