/**
 * The lineage database in memory, indexed the ways audits and garbage collection walk it: executions
 * by stage, artifacts by execution, inputs by consumer and by artifact. Loaded once per command with
 * one statement per table; a workspace of 100k executions is a few hundred MB of rows at most.
 */
import { Effect } from "effect"
import type { ArtifactRow, EnvironmentRow, ExecutionRow, PinRow, RunRow } from "../lineage/Lineage.ts"
import { Lineage } from "../lineage/Lineage.ts"

export interface InputEdge {
  readonly executionId: string
  readonly name: string
  readonly artifactId: string
}

export type { PinRow }

export interface Records {
  readonly runs: ReadonlyMap<string, RunRow>
  readonly executions: ReadonlyMap<string, ExecutionRow>
  /** Newest first. */
  readonly executionsByStage: ReadonlyMap<string, ReadonlyArray<ExecutionRow>>
  readonly executionsByRun: ReadonlyMap<string, ReadonlyArray<ExecutionRow>>
  readonly artifacts: ReadonlyMap<string, ArtifactRow>
  readonly artifactsByExecution: ReadonlyMap<string, ReadonlyArray<ArtifactRow>>
  readonly inputsByExecution: ReadonlyMap<string, ReadonlyArray<InputEdge>>
  readonly consumersByArtifact: ReadonlyMap<string, ReadonlyArray<InputEdge>>
  readonly environments: ReadonlyMap<string, EnvironmentRow>
  readonly pins: ReadonlyArray<PinRow>
}

const groupBy = <A>(rows: ReadonlyArray<A>, key: (a: A) => string): Map<string, Array<A>> => {
  const out = new Map<string, Array<A>>()
  for (const row of rows) {
    const k = key(row)
    const list = out.get(k)
    if (list) list.push(row)
    else out.set(k, [row])
  }
  return out
}

export const loadRecords = Effect.gen(function*() {
  const lineage = yield* Lineage
  const history = yield* lineage.history()
  const executions = [...history.executions].sort((a, b) => b.startedAt - a.startedAt)
  return {
    runs: new Map(history.runs.map((r) => [r.id, r])),
    executions: new Map(executions.map((e) => [e.id, e])),
    executionsByStage: groupBy(executions, (e) => e.stageId),
    executionsByRun: groupBy(executions, (e) => e.runId),
    artifacts: new Map(history.artifacts.map((a) => [a.id, a])),
    artifactsByExecution: groupBy(history.artifacts, (a) => a.executionId),
    inputsByExecution: groupBy(history.inputs, (i) => i.executionId),
    consumersByArtifact: groupBy(history.inputs, (i) => i.artifactId),
    environments: new Map(history.environments.map((e) => [e.id, e])),
    pins: history.pins
  } satisfies Records
})

/** The artifacts an execution produced, by output name. */
export const outputsByName = (records: Records, executionId: string): ReadonlyMap<string, ArtifactRow> =>
  new Map((records.artifactsByExecution.get(executionId) ?? []).map((a) => [a.name, a]))

/** The execution itself and, transitively, every execution that produced one of its inputs. */
export const upstreamClosure = (records: Records, roots: Iterable<string>): ReadonlyArray<ExecutionRow> => {
  const seen = new Set<string>()
  const out: Array<ExecutionRow> = []
  const queue = [...roots]
  while (queue.length > 0) {
    const id = queue.pop()!
    if (seen.has(id)) continue
    seen.add(id)
    const execution = records.executions.get(id)
    if (execution === undefined) continue
    out.push(execution)
    for (const input of records.inputsByExecution.get(id) ?? []) {
      const artifact = records.artifacts.get(input.artifactId)
      if (artifact !== undefined) queue.push(artifact.executionId)
    }
  }
  return out
}
