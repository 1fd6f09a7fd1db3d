/**
 * Every service a command needs, for one workspace. Loaded by the handlers that run or plan stages.
 */
import { Layer } from "effect"
import { Reporter } from "../engine/Reporter.ts"
import type { Executor } from "../executor/Executor.ts"
import { LocalExecutor } from "../executor/local/LocalExecutor.ts"
import { Lineage } from "../lineage/Lineage.ts"
import { ArtifactStore } from "../store/ArtifactStore.ts"
import { ContentHasher } from "../store/ContentHasher.ts"
import { Workspace } from "../workspace/Workspace.ts"

export const servicesLayer = <E = never>(
  workspace: string,
  reporter: Layer.Layer<Reporter> = Reporter.silent,
  executor: Layer.Layer<Executor, E, Lineage | Workspace | Reporter> = LocalExecutor.layer()
) => {
  const base = Layer.provideMerge(Lineage.Default, Workspace.layer(workspace))
  const hasher = Layer.provideMerge(ContentHasher.Default, base)
  return Layer.provideMerge(executor, Layer.mergeAll(Layer.provideMerge(ArtifactStore.Default, hasher), reporter))
}

/** The lineage of one workspace, for the commands that only read or annotate it. */
export const lineageLayer = (workspace: string) => Layer.provideMerge(Lineage.Default, Workspace.layer(workspace))
