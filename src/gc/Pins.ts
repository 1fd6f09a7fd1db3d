/**
 * `flame-pipe pin <target>` / `unpin <target>`: keep an execution (all of its outputs) or one
 * artifact, and so everything they were derived from, out of garbage collection.
 */
import { Data, Effect } from "effect"
import * as crypto from "node:crypto"
import * as path from "node:path"
import { NotFound } from "../domain/Errors.ts"
import type { Pin } from "../domain/Gc.ts"
import type { ArtifactRow, ExecutionRow, PinRow, PinSubject } from "../lineage/Lineage.ts"
import { Lineage } from "../lineage/Lineage.ts"
import { Workspace } from "../workspace/Workspace.ts"
import { beingCollected } from "./Collector.ts"

export class PinError extends Data.TaggedError("PinError")<{ readonly target: string; readonly reason: string }> {
  override get message() {
    return `pin ${this.target}: ${this.reason}`
  }
}

type PinTarget =
  | { readonly _tag: "Execution"; readonly execution: ExecutionRow }
  | { readonly _tag: "Artifact"; readonly artifact: ArtifactRow; readonly stage: string }

/** A stage id (its latest succeeded execution), an execution id or prefix, or an artifact (id, hash, path). */
const findTarget = (needle: string) =>
  Effect.gen(function*() {
    const lineage = yield* Lineage
    const ofStage = yield* lineage.stageExecutions(needle)
    if (ofStage.length > 0) {
      const succeeded = ofStage.filter((e) => e.status === "succeeded").sort((a, b) => b.startedAt - a.startedAt)
      if (succeeded.length === 0) {
        return yield* new PinError({ target: needle, reason: "the stage has no succeeded execution to pin" })
      }
      return { _tag: "Execution", execution: succeeded[0]! } as PinTarget
    }
    const executions = yield* lineage.execution(needle)
    if (executions.length === 1) return { _tag: "Execution", execution: executions[0]! } as PinTarget
    const artifacts = yield* lineage.findArtifacts(needle)
    if (artifacts.length === 1 && executions.length === 0) {
      const artifact = artifacts[0]!
      const producer = (yield* lineage.execution(artifact.executionId))[0]
      return { _tag: "Artifact", artifact, stage: producer?.stageId ?? "(unknown)" } as PinTarget
    }
    return yield* new NotFound({
      what: "stage, execution or artifact",
      name: needle,
      hint: executions.length + artifacts.length > 1 ? "the prefix is ambiguous; give more characters" : undefined
    })
  })

const subjectOf = (target: PinTarget): PinSubject =>
  target._tag === "Execution" ? { executionId: target.execution.id } : { artifactId: target.artifact.id }

const toPin = (row: PinRow, lineageRows: {
  readonly execution: ExecutionRow | undefined
  readonly artifact: ArtifactRow | undefined
  readonly artifactStage: string | undefined
}): Pin => ({
  id: row.id,
  target: row.target,
  stage: lineageRows.execution?.stageId ?? lineageRows.artifactStage ?? "(unknown)",
  execution: row.executionId,
  artifact: lineageRows.artifact === undefined
    ? null
    : { id: lineageRows.artifact.id, name: lineageRows.artifact.name, path: lineageRows.artifact.path },
  note: row.note,
  createdAt: row.createdAt
})

export const listPins = Effect.gen(function*() {
  const lineage = yield* Lineage
  const rows = yield* lineage.pins.list()
  const out: Array<Pin> = []
  for (const row of rows.sort((a, b) => a.createdAt - b.createdAt)) {
    const execution = row.executionId === null ? undefined : (yield* lineage.execution(row.executionId))[0]
    const artifact = row.artifactId === null ? undefined : yield* lineage.artifact(row.artifactId)
    const artifactStage = artifact === undefined
      ? undefined
      : (yield* lineage.execution(artifact.executionId))[0]?.stageId
    out.push(toPin(row, { execution, artifact, artifactStage }))
  }
  return out
})

export const pin = (needle: string, note: string | undefined) =>
  Effect.gen(function*() {
    const lineage = yield* Lineage
    const ws = yield* Workspace
    const target = yield* findTarget(needle)
    if (target._tag === "Artifact" && target.artifact.collectedAt !== null) {
      return yield* new PinError({
        target: needle,
        reason: "the artifact was collected; rebuild it first with: flame-pipe audit <its stage> --restore"
      })
    }
    const existing = yield* lineage.pins.of(subjectOf(target))
    if (existing !== undefined) {
      return { pin: existing, created: false }
    }
    const row = {
      id: crypto.randomUUID(),
      executionId: target._tag === "Execution" ? target.execution.id : null,
      artifactId: target._tag === "Artifact" ? target.artifact.id : null,
      target: needle,
      note: note ?? null,
      createdAt: Date.now()
    }
    yield* lineage.pins.add(row)
    // A gc that planned before this pin existed may be deleting the target right now: see Collector.collect.
    const inFlight = beingCollected(ws)
    const ids = target._tag === "Execution"
      ? (yield* lineage.artifactsOf(target.execution.id)).map((a) => a.id)
      : [target.artifact.id]
    const paths = target._tag === "Execution"
      ? [path.resolve(ws.root, target.execution.outputDir)]
      : [path.resolve(ws.root, target.artifact.path)]
    const within = (p: string, dir: string) => p === dir || p.startsWith(dir + "/")
    if (ids.some((id) => inFlight.ids.has(id)) || paths.some((p) => inFlight.paths.some((u) => within(p, u)))) {
      yield* lineage.pins.remove(row.id)
      return yield* new PinError({ target: needle, reason: "a gc is deleting it right now; try again when it is done" })
    }
    return { pin: row, created: true }
  })

/** Removes the pins of a target (named as for `pin`), or one pin by its id. Returns how many went. */
export const unpin = (needle: string) =>
  Effect.gen(function*() {
    const lineage = yield* Lineage
    const byId = yield* lineage.pins.remove(needle)
    if (byId > 0) {
      return byId
    }
    const target = yield* findTarget(needle)
    const removed = yield* lineage.pins.removeOf(subjectOf(target))
    if (removed === 0) {
      return yield* new PinError({ target: needle, reason: "nothing pinned there" })
    }
    return removed
  })
