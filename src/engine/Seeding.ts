/**
 * Checkpoints as partial cache hits. A stale stage with prefix fingerprints (StageDefinition.prefixes)
 * need not start from step 0 when some execution recorded a state with the prefix it would reach: it
 * starts from the newest such state, and its own outputs up to there are the recorded ones (equal
 * prefixes, equal states). Within one run, a state that an earlier stage of the run will write counts
 * too: the stage waits for it instead of computing the same steps alongside.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import type { StaleReason } from "../domain/Plan.ts"
import type { CheckpointPrefixRow, PrefixCandidate } from "../lineage/Lineage.ts"
import type { ResolvedStage } from "../Pipeline.ts"
import type { StagePrefixes } from "../Stage.ts"

/** Where a state comes from: recorded in lineage, or to be written by an earlier stage of this run. */
export type StateSource =
  | { readonly _tag: "Recorded"; readonly candidate: PrefixCandidate }
  | { readonly _tag: "Planned"; readonly stage: string; readonly output: string }

export interface SeedChoice {
  /** The state the stage starts from, and its step. */
  readonly source: StateSource
  readonly step: number
  readonly total: number
  /** The stage's own outputs at or before that step, each a state recorded (or planned) with its prefix. */
  readonly reused: ReadonlyArray<{ readonly output: string; readonly source: StateSource }>
  /** What computing those steps took the execution that recorded them, prorated; null when unknown. */
  readonly savedMs: number | null
}

/** A stage of this run that will write states, and their prefixes. */
export interface PlannedStates {
  readonly stage: string
  readonly prefixes: StagePrefixes
}

export const prefixesOf = (
  stage: ResolvedStage,
  parts: { readonly inputHashes: Readonly<Record<string, string>>; readonly workerHash: string | null }
): StagePrefixes | undefined =>
  stage.definition.prefixes?.(stage.params, {
    kind: stage.definition.kind,
    version: stage.definition.version,
    inputs: parts.inputHashes,
    workerHash: parts.workerHash
  })

interface Offer {
  readonly step: number
  readonly prefix: string
  readonly source: StateSource
}

/**
 * The newest state the stage can start from: a recorded (intact) or planned state at a step before its
 * last whose prefix equals the stage's own there, such that every own output up to that step is
 * available too. Recorded states win over planned ones at the same step.
 */
export const chooseSeed = (
  own: StagePrefixes,
  recorded: ReadonlyArray<PrefixCandidate>,
  planned: ReadonlyArray<PlannedStates>,
  intact: (candidate: PrefixCandidate) => boolean
): SeedChoice | undefined => {
  const offers: Array<Offer> = recorded.map((candidate) => ({
    step: candidate.step,
    prefix: candidate.prefix,
    source: { _tag: "Recorded", candidate }
  }))
  for (const other of planned) {
    if (other.prefixes.family !== own.family) continue
    for (const [output, step] of Object.entries(other.prefixes.steps)) {
      offers.push({ step, prefix: other.prefixes.at(step), source: { _tag: "Planned", stage: other.stage, output } })
    }
  }
  offers.sort((a, b) => b.step - a.step || rank(a.source) - rank(b.source))

  const checked = new Map<string, boolean>()
  const usable = (offer: Offer): boolean => {
    if (offer.source._tag === "Planned") return true
    const id = offer.source.candidate.artifact.id
    let ok = checked.get(id)
    if (ok === undefined) {
      ok = intact(offer.source.candidate)
      checked.set(id, ok)
    }
    return ok
  }
  /** The first usable offer of a prefix, recorded ones first. */
  const byPrefix = (prefix: string): Offer | undefined => offers.find((o) => o.prefix === prefix && usable(o))

  const ownOutputs = Object.entries(own.steps).sort((a, b) => a[1] - b[1])
  for (const offer of offers) {
    if (offer.step < 1 || offer.step >= own.total) continue
    if (offer.prefix !== own.at(offer.step) || !usable(offer)) continue
    const reused: Array<{ output: string; source: StateSource }> = []
    let complete = true
    for (const [output, step] of ownOutputs) {
      if (step > offer.step) break
      const found = step === offer.step ? offer : byPrefix(own.at(step))
      if (found === undefined) {
        complete = false
        break
      }
      reused.push({ output, source: found.source })
    }
    if (!complete) continue
    return { source: offer.source, step: offer.step, total: own.total, reused, savedMs: savedTime(offer, recorded) }
  }
  return undefined
}

const rank = (source: StateSource) => (source._tag === "Recorded" ? 0 : 1)

/**
 * The recording execution's duration per step it computed (from its own seed, if it had one, to its
 * last recorded state), times the steps reused.
 */
const savedTime = (offer: Offer, recorded: ReadonlyArray<PrefixCandidate>): number | null => {
  if (offer.source._tag !== "Recorded") return null
  const execution = offer.source.candidate.execution
  if (execution.durationMs === null) return null
  const last = Math.max(...recorded.filter((c) => c.execution.id === execution.id).map((c) => c.step))
  const computed = last - (execution.seededStep ?? 0)
  return computed > 0 ? Math.round(execution.durationMs * offer.step / computed) : null
}

/**
 * Puts the reused outputs into the staging directory, hard-linked from where they were recorded (the
 * store never writes into a recorded artifact, and neither may the stage), copied where a link cannot
 * be made. An output already there (kept by an interrupted attempt) is left as it is.
 */
export const linkReusedOutputs = (
  workDir: string,
  workspaceRoot: string,
  reused: ReadonlyArray<{ readonly output: string; readonly source: StateSource }>
): void => {
  for (const { output, source } of reused) {
    if (source._tag !== "Recorded") continue
    const target = path.join(workDir, output)
    if (fs.existsSync(target)) continue
    const temporary = `${target}.linking`
    fs.rmSync(temporary, { recursive: true, force: true })
    linkTree(path.resolve(workspaceRoot, source.candidate.artifact.path), temporary)
    fs.renameSync(temporary, target)
  }
}

const linkTree = (from: string, to: string): void => {
  const stat = fs.statSync(from)
  if (stat.isDirectory()) {
    fs.mkdirSync(to, { recursive: true })
    for (const entry of fs.readdirSync(from)) linkTree(path.join(from, entry), path.join(to, entry))
    return
  }
  try {
    fs.linkSync(from, to)
  } catch {
    // Another filesystem (or one without hard links): a copy, cloned where the filesystem can.
    fs.copyFileSync(from, to, fs.constants.COPYFILE_FICLONE)
  }
}

/** Whether a recorded state is still on disk as recorded; a path that cannot be checked is not. */
export const intactWith =
  (check: (artifact: PrefixCandidate["artifact"]) => string) => (candidate: PrefixCandidate): boolean => {
    try {
      return check(candidate.artifact) === "intact"
    } catch {
      return false
    }
  }

/** How plan and run say it. */
export const seededReason = (choice: SeedChoice): StaleReason =>
  choice.source._tag === "Recorded"
    ? {
      _tag: "Seeded",
      stage: choice.source.candidate.execution.stageId,
      output: choice.source.candidate.artifact.name,
      execution: choice.source.candidate.execution.id,
      step: choice.step,
      total: choice.total,
      savedMs: choice.savedMs
    }
    : {
      _tag: "Seeded",
      stage: choice.source.stage,
      output: choice.source.output,
      execution: null,
      step: choice.step,
      total: choice.total,
      savedMs: null
    }

/** The lineage rows of a finished stage's states, for the outputs it recorded. */
export const prefixRows = (
  prefixes: StagePrefixes,
  artifacts: ReadonlyArray<{ readonly id: string; readonly name: string }>
): Array<CheckpointPrefixRow> =>
  artifacts.flatMap((artifact) => {
    const step = prefixes.steps[artifact.name]
    return step === undefined
      ? []
      : [{ artifactId: artifact.id, family: prefixes.family, step, prefix: prefixes.at(step) }]
  })
