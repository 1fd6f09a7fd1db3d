/**
 * A stage as one of its executions recorded it: the params it ran with and the outputs and resources
 * they imply, whatever the pipeline resolves to now. What an audit re-executes, in its own process or
 * in a batch job (the job spec's `reexecute` mode): the definition is today's, the params are the
 * record's.
 */
import { Either, ParseResult, Schema } from "effect"
import type { ResolvedStage } from "../Pipeline.ts"
import { defaultResources } from "../Stage.ts"

/**
 * `stage` with `recorded` (encoded params, as lineage holds them) decoded by its definition; the
 * reason, in one line, when the current definition cannot decode them.
 */
export const withRecordedParams = (stage: ResolvedStage, recorded: unknown): Either.Either<ResolvedStage, string> =>
  Either.match(Schema.decodeUnknownEither(stage.definition.params)(recorded), {
    onLeft: (error) => {
      // The first problem, with the key it is at: the whole message spells out the schema first.
      const first = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
      const where = first === undefined || first.path.length === 0 ? "" : `${first.path.join(".")}: `
      return Either.left(
        `recorded params do not decode with the current definition: ${where}${first?.message ?? "invalid"}`
      )
    },
    onRight: (params) =>
      Either.right({
        ...stage,
        params,
        encodedParams: recorded as Readonly<Record<string, unknown>>,
        outputs: stage.definition.outputs(params),
        resources: { ...defaultResources, ...stage.definition.resources?.(params) }
      })
  })
