/**
 * Which executions an audit re-executes: those named (`--stages`, ids or globs), all of them, or a
 * seeded sample stratified by stage kind, so that a small sample covers tokenization, training,
 * evaluation and the analyses rather than ten evaluations of one model.
 */
import { Data, Either } from "effect"
import { globRegExp } from "../glob.ts"

export interface Candidate {
  readonly execution: string
  readonly stage: string
  readonly kind: string
}

export class SelectionError extends Data.TaggedError("SelectionError")<{ readonly reason: string }> {
  override get message() {
    return this.reason
  }
}

/** `*` matches any run of characters (slashes included); everything else is literal. */
export const globToRegExp = globRegExp

/** Deterministic pseudo-random numbers in [0, 1) (mulberry32). */
export const seededRandom = (seed: number) => {
  let state = seed | 0
  return () => {
    state = (state + 0x6d2b79f5) | 0
    let t = Math.imul(state ^ (state >>> 15), 1 | state)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const shuffle = <A>(items: ReadonlyArray<A>, random: () => number): Array<A> => {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}

/**
 * n candidates: kinds in a seeded order, one from each in turn (a seeded pick within the kind), until
 * n are chosen or none are left. The same seed and candidates always give the same sample.
 */
export const stratifiedSample = (
  candidates: ReadonlyArray<Candidate>,
  n: number,
  seed: number
): ReadonlyArray<Candidate> => {
  const random = seededRandom(seed)
  const sorted = [...candidates].sort((a, b) => (a.stage < b.stage ? -1 : a.stage > b.stage ? 1 : 0))
  const byKind = new Map<string, Array<Candidate>>()
  for (const c of sorted) {
    const list = byKind.get(c.kind)
    if (list) list.push(c)
    else byKind.set(c.kind, [c])
  }
  const kinds = shuffle([...byKind.keys()].sort(), random)
  const pools = new Map(kinds.map((k) => [k, shuffle(byKind.get(k)!, random)]))
  const out: Array<Candidate> = []
  while (out.length < n) {
    let took = false
    for (const kind of kinds) {
      if (out.length >= n) break
      const next = pools.get(kind)!.shift()
      if (next !== undefined) {
        out.push(next)
        took = true
      }
    }
    if (!took) break
  }
  return out
}

export type SelectedBy = "stages" | "sample" | "all"

export const selectForReexecution = (
  candidates: ReadonlyArray<Candidate>,
  options: {
    readonly stages: ReadonlyArray<string>
    readonly sample: number
    readonly all: boolean
    readonly seed: number
  }
): Either.Either<ReadonlyMap<string, SelectedBy>, SelectionError> => {
  const selected = new Map<string, SelectedBy>()
  if (options.all) {
    for (const c of candidates) selected.set(c.execution, "all")
    return Either.right(selected)
  }
  for (const pattern of options.stages) {
    const re = globToRegExp(pattern)
    const matching = candidates.filter((c) => re.test(c.stage) || c.execution.startsWith(pattern))
    if (matching.length === 0) {
      return Either.left(
        new SelectionError({
          reason: `--stages ${pattern}: no stage in the audit's scope matches (stages are ids like ${
            candidates.slice(0, 3).map((c) => c.stage).join(", ")
          }; * matches anything)`
        })
      )
    }
    for (const c of matching) selected.set(c.execution, "stages")
  }
  const rest = candidates.filter((c) => !selected.has(c.execution))
  for (const c of stratifiedSample(rest, options.sample, options.seed)) selected.set(c.execution, "sample")
  return Either.right(selected)
}
