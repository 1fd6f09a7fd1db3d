/**
 * A job's events file: JSON lines appended by the job on its compute node, followed by the engine
 * from where it last stopped reading. Writes are buffered (a training step may report hundreds of
 * metrics) and flushed a few times a second; the engine only consumes complete lines.
 */
import { Either } from "effect"
import * as fs from "node:fs"
import type { JobEvent, JobEventBody } from "./Protocol.ts"
import { decodeJobEvent } from "./Protocol.ts"

export interface EventsWriter {
  /** `urgent` events (start, result, failure) are written through at once. */
  readonly write: (event: JobEventBody, urgent?: boolean) => void
  readonly close: () => void
}

export interface EventsWriterOptions {
  /** The writing attempt (Slurm's restart count), stamped on every line. */
  readonly attempt: number
  /**
   * Asked before anything buffered is written: once it says no (a later attempt holds the fence),
   * nothing more is, buffered events included.
   */
  readonly mayWrite?: () => boolean
  readonly flushMs?: number
}

export const openEventsWriter = (file: string, options: EventsWriterOptions): EventsWriter => {
  const fd = fs.openSync(file, "a")
  let buffer: Array<string> = []
  let fenced = false
  const flush = () => {
    if (buffer.length === 0) return
    if (!fenced && options.mayWrite !== undefined && !options.mayWrite()) fenced = true
    if (!fenced) fs.writeSync(fd, buffer.join(""))
    buffer = []
  }
  const timer = setInterval(flush, options.flushMs ?? 250)
  timer.unref()
  let closed = false
  return {
    write: (event, urgent = false) => {
      if (closed) return
      buffer.push(JSON.stringify({ ...event, attempt: options.attempt }) + "\n")
      if (urgent || buffer.length >= 512) flush()
    },
    close: () => {
      if (closed) return
      closed = true
      clearInterval(timer)
      flush()
      fs.fsyncSync(fd)
      fs.closeSync(fd)
    }
  }
}

/**
 * Which lines of an events file stand: those of the newest attempt seen so far. A line of an earlier
 * attempt, written after a later one began (an attempt Slurm gave up on, still running), is stale.
 */
export interface AttemptFilter {
  /** The attempt whose events are taken now. */
  readonly current: () => number
  /** Moves on to a later attempt (never back); true when it did. */
  readonly advance: (attempt: number) => boolean
  /** Whether an event stands; an event of a later attempt makes that attempt the current one. */
  readonly accepts: (event: JobEvent) => boolean
}

export const attemptFilter = (initial = 0): AttemptFilter => {
  let current = initial
  const advance = (attempt: number) => {
    if (attempt <= current) return false
    current = attempt
    return true
  }
  return {
    current: () => current,
    advance,
    accepts: (event) => {
      if (event.attempt < current) return false
      advance(event.attempt)
      return true
    }
  }
}

/** Reads a whole events file (a job's side, for what earlier attempts reported). */
export const readAllEvents = (file: string): ReadonlyArray<JobEvent> => readEvents(file, newCursor()).events

/** Where the engine stopped reading a job's events file. */
export interface EventsCursor {
  offset: number
  /** Bytes of a line not yet complete (kept as bytes: it may end inside a UTF-8 character). */
  partial: Buffer
}

export const newCursor = (): EventsCursor => ({ offset: 0, partial: Buffer.alloc(0) })

/** The complete lines appended since the cursor, decoded; a line that does not decode is returned as malformed. */
export const readEvents = (
  file: string,
  cursor: EventsCursor
): { readonly events: ReadonlyArray<JobEvent>; readonly malformed: ReadonlyArray<string> } => {
  let fd: number
  try {
    fd = fs.openSync(file, "r")
  } catch {
    return { events: [], malformed: [] }
  }
  const chunks: Array<Buffer> = [cursor.partial]
  try {
    const buffer = Buffer.alloc(1 << 16)
    for (;;) {
      const n = fs.readSync(fd, buffer, 0, buffer.length, cursor.offset)
      if (n === 0) break
      chunks.push(Buffer.from(buffer.subarray(0, n)))
      cursor.offset += n
    }
  } finally {
    fs.closeSync(fd)
  }
  const bytes = Buffer.concat(chunks)
  const end = bytes.lastIndexOf(0x0a)
  cursor.partial = Buffer.from(bytes.subarray(end + 1))
  const text = bytes.subarray(0, end + 1).toString("utf8")
  const events: Array<JobEvent> = []
  const malformed: Array<string> = []
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue
    const decoded = decodeJobEvent(line)
    if (Either.isRight(decoded)) events.push(decoded.right)
    else malformed.push(line.slice(0, 200))
  }
  return { events, malformed }
}
