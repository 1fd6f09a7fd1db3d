/**
 * Is a stage fresh? It is when a successful execution with its fingerprint is recorded and that
 * execution's outputs are still on disk unmodified. When it is not, say why, as precisely as the
 * records allow: which param changed (old -> new), which upstream, the worker binary, an output.
 */
import { Effect } from "effect"
import * as path from "node:path"
import { StoreError } from "../domain/Errors.ts"
import type { StaleReason } from "../domain/Plan.ts"
import type { IndexEntry } from "../lineage/Lineage.ts"
import type { ResolvedStage } from "../Pipeline.ts"
import type { ArtifactState } from "../store/ArtifactStore.ts"
import { ArtifactStore } from "../store/ArtifactStore.ts"
import type { ContentHash } from "../store/ContentHasher.ts"
import { ContentHasher } from "../store/ContentHasher.ts"
import type { FingerprintParts } from "./Fingerprint.ts"
import { diffParams, fingerprint, recordMatchesFingerprint } from "./Fingerprint.ts"

export type CacheEntry = IndexEntry

export interface CacheIndex {
  readonly byFingerprint: ReadonlyMap<string, CacheEntry>
  readonly latestByStage: ReadonlyMap<string, CacheEntry>
}

/** An upstream output as a consumer sees it. */
export interface InputArtifact {
  readonly id: string
  readonly path: string
  readonly hash: string
}

export type Decision =
  | { readonly _tag: "Fresh"; readonly fingerprint: string; readonly entry: CacheEntry }
  | {
    readonly _tag: "Stale"
    readonly fingerprint: string
    readonly inputHashes: Readonly<Record<string, string>>
    readonly workerHash: string | null
    readonly sourceHashes: Readonly<Record<string, string>>
    readonly reasons: ReadonlyArray<StaleReason>
    readonly previous: CacheEntry | undefined
  }

/**
 * What deciding needs from the stat cache and the store, synchronously: a no-op run of a large DAG
 * decides every stage in one loop, and an Effect per stage would cost more than the decision.
 */
export interface FreshnessProbe {
  /** Hash of a path every stage of the run shares (sources): stat and hash once per run. */
  readonly hashOnce: (target: string) => ContentHash | undefined
  /** Hash of a program a stage runs (its worker binary), always from its bytes. */
  readonly hashExecutable: (target: string) => ContentHash | undefined
  readonly check: (artifact: { readonly path: string; readonly hash: string }) => ArtifactState
}

/** The content hash of the stage's worker binary, which is part of its fingerprint. */
const workerHashSync = (stage: ResolvedStage, probe: FreshnessProbe): string | null => {
  if (stage.workerPath === undefined) return null
  const content = probe.hashExecutable(stage.workerPath)
  if (content === undefined) {
    throw new StoreError({
      path: stage.workerPath,
      reason: `worker binary of stage ${stage.id} not found (build it with: npm run build:worker)`
    })
  }
  return content.hash
}

/** Content hashes of the external files a stage reads; a missing one is an error naming the stage. */
const sourceHashesSync = (stage: ResolvedStage, probe: FreshnessProbe): Record<string, string> => {
  const hashes: Record<string, string> = {}
  for (const source of stage.sourcePaths) {
    const content = probe.hashOnce(path.resolve(source))
    if (content === undefined) {
      throw new StoreError({ path: source, reason: `stage ${stage.id} reads this path, which does not exist` })
    }
    hashes[source] = content.hash
  }
  return hashes
}

/**
 * Does the cached row still hash to its fingerprint? When its columns are, as text, exactly what this
 * decision would record (lineage stores JSON columns as JSON.stringify writes them), they hash to the
 * fingerprint just computed, which is the row's: that settles it without parsing anything. Otherwise
 * (older rows, other key orders, an edited row) the row's parts are parsed and hashed again. The index
 * keeps JSON columns as text; a column that no longer parses explains nothing either.
 */
const indexedRecordMatches = (entry: CacheEntry, now: FingerprintParts): boolean => {
  const row = entry.execution
  if (
    row.stageId === now.stageId && row.version === now.version && (row.workerHash ?? null) === now.workerHash &&
    row.params === JSON.stringify(now.params) && row.inputHashes === JSON.stringify(now.inputs) &&
    row.sourceHashes === JSON.stringify(now.sources)
  ) return true
  try {
    return recordMatchesFingerprint({
      ...row,
      params: JSON.parse(row.params),
      inputHashes: JSON.parse(row.inputHashes) as Record<string, string>,
      sourceHashes: JSON.parse(row.sourceHashes) as Record<string, string>
    })
  } catch {
    return false
  }
}

/** Decides one stage; throws a StoreError when a path it needs cannot be hashed. */
export const decideSync = (
  stage: ResolvedStage,
  inputs: Readonly<Record<string, InputArtifact>>,
  index: CacheIndex,
  probe: FreshnessProbe
): Decision => {
  const inputHashes: Record<string, string> = {}
  for (const name in inputs) inputHashes[name] = (inputs[name] as InputArtifact).hash
  const worker = workerHashSync(stage, probe)
  const sources = sourceHashesSync(stage, probe)
  const parts: FingerprintParts = {
    sources,
    stageId: stage.id,
    version: stage.definition.version,
    params: stage.encodedParams,
    inputs: inputHashes,
    workerHash: worker
  }
  const fp = fingerprint(parts)
  const stale = (reasons: ReadonlyArray<StaleReason>, previous: CacheEntry | undefined): Decision => ({
    _tag: "Stale",
    fingerprint: fp,
    inputHashes,
    workerHash: worker,
    sourceHashes: sources,
    reasons,
    previous
  })

  const hit = index.byFingerprint.get(fp)
  if (hit !== undefined) {
    if (!indexedRecordMatches(hit, parts)) {
      return stale([{ _tag: "RecordAltered", execution: hit.execution.id }], undefined)
    }
    const damaged: Array<StaleReason> = []
    for (const artifact of hit.artifacts) {
      const state = probe.check(artifact)
      if (state === "missing") damaged.push({ _tag: "OutputMissing", output: artifact.name, path: artifact.path })
      if (state === "modified") damaged.push({ _tag: "OutputModified", output: artifact.name, path: artifact.path })
    }
    // The index leaves out collected artifacts (gc): an output without a row is as gone as a deleted one.
    if (hit.artifacts.length < Object.keys(stage.outputs).length) {
      for (const name in stage.outputs) {
        if (!hit.artifacts.some((a) => a.name === name)) {
          damaged.push({ _tag: "OutputMissing", output: name, path: "collected by gc" })
        }
      }
    }
    return damaged.length === 0 ? { _tag: "Fresh", fingerprint: fp, entry: hit } : stale(damaged, hit)
  }

  const previous = index.latestByStage.get(stage.id)
  if (previous === undefined) return stale([{ _tag: "NeverRun" }], undefined)
  const before = previous.execution
  const beforeInputs = JSON.parse(before.inputHashes) as Record<string, string>
  const beforeSources = JSON.parse(before.sourceHashes) as Record<string, string>
  const reasons: Array<StaleReason> = []
  if (before.version !== stage.definition.version) {
    reasons.push({ _tag: "VersionChanged", from: before.version, to: stage.definition.version })
  }
  for (const change of diffParams(JSON.parse(before.params), stage.encodedParams)) {
    reasons.push({
      _tag: "ParamChanged",
      key: change.key,
      ...(change.from === undefined ? {} : { from: change.from }),
      ...(change.to === undefined ? {} : { to: change.to })
    })
  }
  for (const [name, hash] of Object.entries(inputHashes)) {
    if (beforeInputs[name] !== hash) {
      reasons.push({ _tag: "UpstreamChanged", input: name, stage: stage.inputs[name]?.stage ?? name })
    }
  }
  for (const [source, hash] of Object.entries(sources)) {
    if (beforeSources[source] !== hash) reasons.push({ _tag: "SourceChanged", path: source })
  }
  if ((before.workerHash ?? null) !== worker) {
    reasons.push({ _tag: "WorkerChanged", from: before.workerHash ?? null, to: worker })
  }
  return stale(reasons.length > 0 ? reasons : [{ _tag: "NeverRun" }], previous)
}

/**
 * The probe over this run's stat cache and store. `verify` (run --verify) rereads every source and
 * every recorded output a decision looks at, so bit rot under an unchanged stat is found.
 */
export const freshnessProbe = (options: { readonly verify: boolean } = { verify: false }) =>
  Effect.gen(function*() {
    const hasher = yield* ContentHasher
    const store = yield* ArtifactStore
    return {
      hashOnce: (target) => hasher.hashOnceSync(target, options.verify),
      hashExecutable: hasher.hashExecutableSync,
      check: (artifact) => store.checkSync(artifact, options.verify)
    } satisfies FreshnessProbe
  })

export const asStoreError = (cause: unknown): StoreError =>
  cause instanceof StoreError ? cause : new StoreError({ path: "", reason: `cannot decide: ${String(cause)}` })

/** Is the stage fresh, and if not, why. Fails with a StoreError when a path it needs cannot be hashed. */
export const decide = (
  stage: ResolvedStage,
  inputs: Readonly<Record<string, InputArtifact>>,
  index: CacheIndex,
  probe: FreshnessProbe
) => Effect.try({ try: () => decideSync(stage, inputs, index, probe), catch: asStoreError })

/** The artifacts of a cached execution, by output name, as consumers see them. */
export const outputsOf = (entry: CacheEntry): ReadonlyMap<string, InputArtifact> =>
  new Map(entry.artifacts.map((a) => [a.name, { id: a.id, path: a.path, hash: a.hash }]))

/** Resolves a stage's inputs from its upstreams' outputs; undefined when an upstream has not produced them. */
export const gatherInputs = (
  stage: ResolvedStage,
  outputsByStage: ReadonlyMap<string, ReadonlyMap<string, InputArtifact>>
): Record<string, InputArtifact> | undefined => {
  const inputs: Record<string, InputArtifact> = {}
  for (const [name, ref] of Object.entries(stage.inputs)) {
    const artifact = outputsByStage.get(ref.stage)?.get(ref.output)
    if (artifact === undefined) return undefined
    inputs[name] = artifact
  }
  return inputs
}

export const absoluteInputs = (
  inputs: Readonly<Record<string, InputArtifact>>,
  root: string
): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [name, artifact] of Object.entries(inputs)) out[name] = path.resolve(root, artifact.path)
  return out
}
