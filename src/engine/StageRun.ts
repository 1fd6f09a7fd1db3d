/**
 * One attempt at a stage body, the same wherever it runs: in the engine's process (the local
 * executor), in a batch job on a compute node (the remote job runner) or again for an audit. Each
 * caller says where the attempt writes and where its progress and metrics go; this builds the
 * stage's context from that, runs the body and hands back its result encoded with the stage's
 * result schema, the form lineage records and a job's events carry. A failure stays the stage's
 * error; `encodeFailure` is how it is persisted.
 */
import { Cause, Effect, Option, Schema } from "effect"
import * as fs from "node:fs"
import { PersistedError, StageFailed } from "../domain/Errors.ts"
import type { WorkerFailed } from "../domain/Errors.ts"
import type { Lineage } from "../lineage/Lineage.ts"
import type { InputFactsRequest } from "../lineage/reportFacts.ts"
import { writeLineageFacts } from "../lineage/reportFacts.ts"
import type { AnyStageDefinition, StageContext, StageSeed } from "../Stage.ts"
import { confinedOutput } from "../workspace/StagePaths.ts"

/** Where an attempt reads and writes, and what it may use. */
export interface AttemptPlace {
  /** Absolute paths of the upstream outputs it consumes, by input name. */
  readonly inputs: Readonly<Record<string, string>>
  /** The staging directory its outputs go to. */
  readonly workDir: string
  readonly logPath: string
  readonly gpus: ReadonlyArray<string>
  readonly cpus: number
  /** The recorded state to start from instead of step 0 (StageContext.seed). */
  readonly seed?: StageSeed
}

/** Where an attempt's reports go: the engine's reporter and lineage, a job's events file, or nowhere. */
export interface AttemptReports {
  readonly progress: StageContext<unknown>["progress"]
  readonly metric: StageContext<unknown>["metric"]
  readonly workerStarted: StageContext<unknown>["workerStarted"]
  readonly outputReady?: StageContext<unknown>["outputReady"]
  readonly recordedMetric?: StageContext<unknown>["recordedMetric"]
}

/** The context a body sees: its params, where it writes (confined to its directory) and where it reports. */
export const stageContext = (
  stage: { readonly id: string; readonly params: unknown },
  place: AttemptPlace,
  reports: AttemptReports
): StageContext<unknown> => ({
  stageId: stage.id,
  params: stage.params,
  inputs: place.inputs,
  output: confinedOutput(stage.id, place.workDir),
  workDir: place.workDir,
  logPath: place.logPath,
  gpus: place.gpus,
  cpus: place.cpus,
  ...(place.seed === undefined ? {} : { seed: place.seed }),
  log: (message) => Effect.sync(() => fs.appendFileSync(place.logPath, `${message}\n`)),
  progress: reports.progress,
  metric: reports.metric,
  workerStarted: reports.workerStarted,
  ...(reports.outputReady === undefined ? {} : { outputReady: reports.outputReady }),
  ...(reports.recordedMetric === undefined ? {} : { recordedMetric: reports.recordedMetric })
})

/**
 * For a stage that asks for lineage facts (StageDefinition.lineageFacts), reads them where lineage is
 * (the engine, an audit) and writes them into the staging directory before the body runs, wherever it
 * runs. `artifacts` are the artifact ids the attempt consumes, by input name: the facts are those of
 * the executions that produced exactly these. An input asked about that the stage does not consume,
 * or that lineage does not know, fails the stage.
 */
export const provideLineageFacts = (
  lineage: Pick<Lineage, "inputFacts">,
  stage: { readonly id: string; readonly definition: AnyStageDefinition; readonly params: unknown },
  place: {
    readonly artifacts: Readonly<Record<string, string>>
    /** The workspace the artifacts' recorded paths are relative to. */
    readonly workspace: string
    readonly workDir: string
  }
): Effect.Effect<void, StageFailed> =>
  Effect.gen(function*() {
    const asked = stage.definition.lineageFacts?.(stage.params, Object.keys(place.artifacts))
    if (asked === undefined) return
    const fail = (reason: string) => new StageFailed({ stage: stage.id, reason })
    const wanted: Array<InputFactsRequest> = []
    for (const [input, metrics] of Object.entries(asked)) {
      const artifactId = place.artifacts[input]
      if (artifactId === undefined) {
        return yield* fail(`asks for the lineage facts of ${input}, which is not one of its inputs`)
      }
      wanted.push({ input, artifactId, metrics })
    }
    const found = yield* lineage.inputFacts(wanted).pipe(Effect.mapError((error) => fail(error.message)))
    const unknown = wanted.find((w) => found.producers[w.input] === undefined)
    if (unknown !== undefined) {
      return yield* fail(`input ${unknown.input}: artifact ${unknown.artifactId} is not in lineage`)
    }
    yield* Effect.try({
      try: () => writeLineageFacts(place.workDir, { workspace: place.workspace, ...found }),
      catch: (cause) =>
        fail(
          `cannot write its lineage facts into ${place.workDir}: ${
            cause instanceof Error ? cause.message : String(cause)
          }`
        )
    })
  })

/**
 * Runs the body and returns its result encoded. A result that does not match the stage's result
 * schema fails the stage, naming it; so does a path refused by `output` (thrown inside the body),
 * which is the stage's failure and not a crash of whatever runs it.
 */
export const runStageBody = (
  stage: { readonly id: string; readonly definition: AnyStageDefinition },
  ctx: StageContext<unknown>
): Effect.Effect<unknown, StageFailed | WorkerFailed> =>
  Effect.suspend(() => stage.definition.run(ctx)).pipe(
    Effect.catchSomeDefect((defect) =>
      defect instanceof StageFailed ? Option.some(Effect.fail(defect)) : Option.none()
    ),
    Effect.flatMap((value) =>
      Schema.decodeUnknown(stage.definition.result)(value).pipe(
        Effect.mapError((error) =>
          new StageFailed({ stage: stage.id, reason: `result does not match its schema: ${error.message}` })
        )
      )
    ),
    Effect.map((decoded) => Schema.encodeUnknownSync(stage.definition.result)(decoded))
  )

/**
 * Decodes a result that came back encoded (from an executor, or a job's events) into the stage's
 * result type; a result that does not decode fails the stage.
 */
export const decodeStageResult = (
  stage: { readonly id: string; readonly definition: AnyStageDefinition },
  encoded: unknown
): Effect.Effect<unknown, StageFailed> =>
  Schema.decodeUnknown(stage.definition.result)(encoded).pipe(
    Effect.mapError((error) =>
      new StageFailed({ stage: stage.id, reason: `result does not match its schema: ${error.message}` })
    )
  )

/** A failure as lineage and a job's events keep it: the stage's own errors by their schema, anything else by its message. */
/** One line for a failed attempt: its error's message, or the first line of what else ended it. */
export const causeMessage = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    const error = failure.value
    return error instanceof Error ? error.message : String(error)
  }
  return Cause.pretty(cause).split("\n")[0] ?? "unknown error"
}

export const encodeFailure = (error: unknown): unknown =>
  error === undefined ?
    null :
    Schema.is(PersistedError)(error) ?
    Schema.encodeSync(PersistedError)(error) :
    { _tag: "Unknown", message: error instanceof Error ? error.message : String(error) }
