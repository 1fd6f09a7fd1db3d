/**
 * The lineage database in memory, indexed the ways audits and garbage collection walk it: executions
 * by stage, artifacts by execution, inputs by consumer and by artifact. Loaded once per command with
 * one statement per table; a workspace of 100k executions is a few hundred MB of rows at most.
 */
import { Effect } from "effect"
import { LineageError } from "../domain/Errors.ts"
import type { ArtifactRow, EnvironmentRow, ExecutionRow, RunRow } from "../lineage/Lineage.ts"
import { Lineage } from "../lineage/Lineage.ts"
import * as schema from "../lineage/schema.ts"

export interface InputEdge {
  readonly executionId: string
  readonly name: string
  readonly artifactId: string
}

export type PinRow = typeof schema.pins.$inferSelect

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
  return yield* Effect.try({
    try: (): Records => {
      const db = lineage.db
      // One read transaction: a run writing meanwhile cannot show us an execution without its artifacts.
      return lineage.sqlite.transaction(() => {
        const runs = db.select().from(schema.runs).all()
        const executions = db.select().from(schema.executions).all()
        const artifacts = db.select().from(schema.artifacts).all()
        const inputs = db.select().from(schema.executionInputs).all()
        const environments = db.select().from(schema.environments).all()
        const pins = db.select().from(schema.pins).all()
        executions.sort((a, b) => b.startedAt - a.startedAt)
        return {
          runs: new Map(runs.map((r) => [r.id, r])),
          executions: new Map(executions.map((e) => [e.id, e])),
          executionsByStage: groupBy(executions, (e) => e.stageId),
          executionsByRun: groupBy(executions, (e) => e.runId),
          artifacts: new Map(artifacts.map((a) => [a.id, a])),
          artifactsByExecution: groupBy(artifacts, (a) => a.executionId),
          inputsByExecution: groupBy(inputs, (i) => i.executionId),
          consumersByArtifact: groupBy(inputs, (i) => i.artifactId),
          environments: new Map(environments.map((e) => [e.id, e])),
          pins
        }
      })()
    },
    catch: (cause) => new LineageError({ reason: `loading the records: ${String(cause)}`, cause })
  })
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
