/**
 * Reading a task file: JSON lines as `datasets.Dataset.to_json` writes them. Every row is decoded with the
 * dataset's schema; the first bad row fails the whole file with its file, 1-based line and field.
 */
import { Effect, Either, ParseResult, Schema } from "effect"
import { readFile } from "node:fs/promises"
import { BadRowError, TaskFileError } from "./errors.ts"

const keyOf = (path: ReadonlyArray<PropertyKey>): string => path.map(String).join(".")

/** Decodes one parsed JSON value, turning the first schema issue into a BadRowError. */
export const decodeRow = <Row, I>(
  schema: Schema.Schema<Row, I>,
  value: unknown,
  file: string,
  line: number
): Either.Either<Row, BadRowError> =>
  Either.mapLeft(Schema.decodeUnknownEither(schema, { errors: "first", onExcessProperty: "ignore" })(value), (e) => {
    const issue = ParseResult.ArrayFormatter.formatErrorSync(e)[0]
    return new BadRowError({
      file,
      line,
      key: issue === undefined || issue.path.length === 0 ? "(row)" : keyOf(issue.path),
      reason: issue?.message ?? "does not match the dataset layout"
    })
  })

export interface NumberedValue {
  /** 1-based line in the file. */
  readonly line: number
  readonly value: object
}

/** Pure: the JSON objects of a JSON-lines text. Blank lines are skipped (but still counted). */
export const parseJsonLines = (
  text: string,
  file: string
): Either.Either<ReadonlyArray<NumberedValue>, BadRowError> => {
  const values: Array<NumberedValue> = []
  const lines = text.split("\n")
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!
    if (raw.trim() === "") continue
    let value: unknown
    try {
      value = JSON.parse(raw)
    } catch (e) {
      return Either.left(new BadRowError({ file, line: i + 1, reason: `malformed JSON (${String(e)})` }))
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      return Either.left(new BadRowError({ file, line: i + 1, reason: "not a JSON object" }))
    }
    values.push({ line: i + 1, value })
  }
  return Either.right(values)
}

export const readTextFile = (file: string): Effect.Effect<string, TaskFileError> =>
  Effect.tryPromise({
    try: () => readFile(file, "utf8"),
    catch: (e) => new TaskFileError({ file, reason: String(e) })
  })
