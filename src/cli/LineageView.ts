/**
 * `flame-pipe lineage`: the tree of executions and artifacts behind (or, with --down, after) a target.
 */
import { Effect } from "effect"
import { NotFound } from "../domain/Errors.ts"
import { formatBytes } from "../format.ts"
import type { ArtifactRow, ExecutionRow } from "../lineage/Lineage.ts"
import { Lineage } from "../lineage/Lineage.ts"

const describeArtifact = (a: ArtifactRow) =>
  `artifact ${a.name} ${a.hash.slice(0, 12)} ${formatBytes(a.size)} ${a.path}${a.collectedAt ? " (collected)" : ""}`

const describeExecution = (e: ExecutionRow) =>
  `${e.stageId} [execution ${e.id.slice(0, 8)}, ${e.status}, ${new Date(e.startedAt).toISOString()}${
    e.resumedFrom ? `, resumed ${e.resumedFrom.slice(0, 8)}` : ""
  }${e.seededStep === null ? "" : `, seeded at step ${e.seededStep}`}]`

type Target =
  | { readonly _tag: "Execution"; readonly execution: ExecutionRow }
  | { readonly _tag: "Artifact"; readonly artifact: ArtifactRow }

/** A target is an execution id, an artifact (id, hash, or path), or a stage id (its latest execution). */
const findTarget = (needle: string) =>
  Effect.gen(function*() {
    const lineage = yield* Lineage
    const latest = yield* lineage.latestExecutionOfStage(needle)
    if (latest) return { _tag: "Execution", execution: latest } as Target
    const artifacts = yield* lineage.findArtifacts(needle)
    if (artifacts.length === 1) return { _tag: "Artifact", artifact: artifacts[0]! } as Target
    const executions = yield* lineage.execution(needle)
    if (executions.length === 1) return { _tag: "Execution", execution: executions[0]! } as Target
    return yield* new NotFound({
      what: "stage, execution or artifact",
      name: needle,
      hint: artifacts.length + executions.length > 1 ? "the prefix is ambiguous; give more characters" : undefined
    })
  })

export const lineageTree = (needle: string, direction: "up" | "down") =>
  Effect.gen(function*() {
    const lineage = yield* Lineage
    const target = yield* findTarget(needle)
    const lines: Array<string> = []
    const seen = new Set<string>()

    const upExecution = (execution: ExecutionRow, prefix: string): Effect.Effect<void, unknown> =>
      Effect.gen(function*() {
        if (seen.has(execution.id)) {
          lines.push(`${prefix}(see above)`)
          return
        }
        seen.add(execution.id)
        const inputs: Array<{ readonly label: string; readonly artifact: ArtifactRow }> = (yield* lineage.inputsOf(
          execution.id
        )).map((input) => ({ label: `input ${input.name}`, artifact: input.artifact }))
        // A seeded execution started from another's checkpoint: that is part of where it came from.
        const seed = execution.seededFrom === null ? undefined : (yield* lineage.findArtifacts(execution.seededFrom))[0]
        if (seed !== undefined) inputs.push({ label: `seeded at step ${execution.seededStep} from`, artifact: seed })
        for (const [i, input] of inputs.entries()) {
          const last = i === inputs.length - 1
          lines.push(`${prefix}${last ? "└─" : "├─"} ${input.label}: ${describeArtifact(input.artifact)}`)
          const producer = (yield* lineage.execution(input.artifact.executionId))[0]
          if (producer) {
            const childPrefix = `${prefix}${last ? "   " : "│  "}`
            lines.push(`${childPrefix}└─ produced by ${describeExecution(producer)}`)
            yield* upExecution(producer, `${childPrefix}   `)
          }
        }
      })

    const downArtifact = (artifact: ArtifactRow, prefix: string): Effect.Effect<void, unknown> =>
      Effect.gen(function*() {
        const consumers = yield* lineage.consumersOf(artifact.id)
        for (const [i, consumer] of consumers.entries()) {
          const last = i === consumers.length - 1
          lines.push(
            `${prefix}${last ? "└─" : "├─"} consumed as ${consumer.name} by ${describeExecution(consumer.execution)}`
          )
          yield* downExecution(consumer.execution, `${prefix}${last ? "   " : "│  "}`)
        }
      })

    const downExecution = (execution: ExecutionRow, prefix: string): Effect.Effect<void, unknown> =>
      Effect.gen(function*() {
        if (seen.has(execution.id)) {
          lines.push(`${prefix}(see above)`)
          return
        }
        seen.add(execution.id)
        const outputs = yield* lineage.artifactsOf(execution.id)
        for (const [i, output] of outputs.entries()) {
          const last = i === outputs.length - 1
          lines.push(`${prefix}${last ? "└─" : "├─"} output ${describeArtifact(output)}`)
          yield* downArtifact(output, `${prefix}${last ? "   " : "│  "}`)
        }
      })

    if (target._tag === "Execution") {
      lines.push(describeExecution(target.execution))
      if (direction === "up") {
        for (const output of yield* lineage.artifactsOf(target.execution.id)) {
          lines.push(`  output ${describeArtifact(output)}`)
        }
        yield* upExecution(target.execution, "")
      } else {
        yield* downExecution(target.execution, "")
      }
    } else {
      lines.push(describeArtifact(target.artifact))
      if (direction === "up") {
        const producer = (yield* lineage.execution(target.artifact.executionId))[0]
        if (producer) {
          lines.push(`└─ produced by ${describeExecution(producer)}`)
          yield* upExecution(producer, "   ")
        }
      } else {
        yield* downArtifact(target.artifact, "")
      }
    }
    return lines
  })
