/**
 * JSON read from a file the user supplied (a tokenizer, a settings file): a syntax error names the
 * file, line and column instead of surfacing as a bare `SyntaxError` from `JSON.parse`.
 */
import { Data } from "effect"
import * as fs from "node:fs"

export class JsonFileError extends Data.TaggedError("JsonFileError")<{
  readonly file: string
  /** 1-based; absent when the file could not be read at all. */
  readonly line?: number
  readonly column?: number
  readonly reason: string
}> {
  override get message() {
    const where = this.line === undefined ? this.file : `${this.file}:${this.line}:${this.column ?? 1}`
    return `${where}: ${this.reason}`
  }
}

/** Line and column (1-based) of a character offset. */
export const lineAndColumn = (text: string, offset: number): { line: number; column: number } => {
  let line = 1
  let lineStart = 0
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++
      lineStart = i + 1
    }
  }
  return { line, column: offset - lineStart + 1 }
}

/**
 * Where V8 says a parse failed: "at position N" (Node 20), or "line L column C" (Node 22 and later);
 * "Unexpected end of JSON input" means the end of the text.
 */
const failurePosition = (text: string, message: string): { line: number; column: number } => {
  const lineColumn = /line (\d+) column (\d+)/.exec(message)
  if (lineColumn) return { line: Number(lineColumn[1]), column: Number(lineColumn[2]) }
  const position = /at position (\d+)/.exec(message)
  return lineAndColumn(text, position ? Number(position[1]) : text.length)
}

/** Parses JSON text that came from `file`; throws a JsonFileError naming the place. */
export const parseJsonText = (text: string, file: string): unknown => {
  try {
    return JSON.parse(text)
  } catch (cause) {
    const message = cause instanceof Error ? cause.message : String(cause)
    const { column, line } = failurePosition(text, message)
    // V8's message repeats the position (and, on newer Node, a snippet); keep what it says is wrong.
    const reason = message.replace(/\s*(?:in JSON )?at position \d+.*$/s, "").replace(
      /\s*\(line \d+ column \d+\).*$/s,
      ""
    )
    throw new JsonFileError({ file, line, column, reason: `invalid JSON: ${reason}` })
  }
}

/** Reads and parses a JSON file; throws a JsonFileError naming the file (and position). */
export const readJsonFile = (file: string): unknown => {
  let text: string
  try {
    text = fs.readFileSync(file, "utf8")
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code
    throw new JsonFileError({ file, reason: code === "ENOENT" ? "no such file" : `cannot read: ${String(cause)}` })
  }
  return parseJsonText(text, file)
}
