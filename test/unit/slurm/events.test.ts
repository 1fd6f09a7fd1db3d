import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import {
  attemptFilter,
  newCursor,
  openEventsWriter,
  readAllEvents,
  readEvents
} from "../../../src/executor/remote/Events.ts"

const tmpFile = () => path.join(fs.mkdtempSync(path.join(os.tmpdir(), "fp-events-")), "events.jsonl")

describe("job events files", () => {
  it("the engine reads what the job appended since it last looked, complete lines only", () => {
    const file = tmpFile()
    const writer = openEventsWriter(file, { attempt: 2, flushMs: 10_000 })
    const cursor = newCursor()
    writer.write({ t: "start", host: "n1", pid: 1, at: 1 }, true)
    writer.write({ t: "metric", name: "loss", step: 1, value: 5.5 })
    expect(readEvents(file, cursor).events.map((e) => e.t)).toEqual(["start"])
    writer.write({ t: "metric", name: "loss", step: 2, value: null }, true)
    // Every line carries the writer's attempt.
    expect(readEvents(file, cursor).events).toEqual([
      { t: "metric", attempt: 2, name: "loss", step: 1, value: 5.5 },
      { t: "metric", attempt: 2, name: "loss", step: 2, value: null }
    ])
    writer.close()
    expect(readEvents(file, cursor).events).toEqual([])
  })

  it("keeps a partial line, even one cut inside a UTF-8 character, for the next read; reports malformed lines", () => {
    const file = tmpFile()
    const line = Buffer.from(JSON.stringify({ t: "result", value: { note: "λ→∞" } }) + "\n")
    const cut = line.indexOf(Buffer.from("→")) + 1
    fs.writeFileSync(file, line.subarray(0, cut))
    const cursor = newCursor()
    expect(readEvents(file, cursor)).toEqual({ events: [], malformed: [] })
    fs.appendFileSync(file, Buffer.concat([line.subarray(cut), Buffer.from("not json\n")]))
    const { events, malformed } = readEvents(file, cursor)
    // A line without an attempt is the first attempt's.
    expect(events).toEqual([{ t: "result", attempt: 0, value: { note: "λ→∞" } }])
    expect(malformed).toEqual(["not json"])
  })

  it("once the fence names a later attempt, the writer writes nothing more, not even what it had buffered", () => {
    const file = tmpFile()
    let current = true
    const writer = openEventsWriter(file, { attempt: 0, flushMs: 10_000, mayWrite: () => current })
    writer.write({ t: "metric", name: "loss", step: 1, value: 1 }, true)
    writer.write({ t: "metric", name: "loss", step: 2, value: 2 })
    current = false
    writer.write({ t: "result", value: 1 }, true)
    // Even should the fence read as current again (a glitch reading it), a fenced writer stays fenced.
    current = true
    writer.write({ t: "interrupted" }, true)
    writer.close()
    expect(readAllEvents(file)).toEqual([{ t: "metric", attempt: 0, name: "loss", step: 1, value: 1 }])
  })

  it("takes the lines of the newest attempt seen: an earlier attempt's lines written after it are stale", () => {
    const filter = attemptFilter()
    const line = (attempt: number) => ({ t: "interrupted" as const, attempt })
    expect([0, 0, 1, 0, 1, 2, 1].map((a) => filter.accepts(line(a)))).toEqual([
      true,
      true,
      true,
      false,
      true,
      true,
      false
    ])
    expect(filter.current()).toBe(2)
    expect(filter.advance(1)).toBe(false)
    expect(filter.advance(3)).toBe(true)
    expect(filter.accepts(line(2))).toBe(false)
  })

  it("a missing file has no events yet", () => {
    expect(readEvents(path.join(os.tmpdir(), "fp-no-such-events"), newCursor()).events).toEqual([])
  })
})
