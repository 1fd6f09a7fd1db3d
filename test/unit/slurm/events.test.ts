import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { newCursor, openEventsWriter, readEvents } from "../../../src/slurm/Events.ts"

const tmpFile = () => path.join(fs.mkdtempSync(path.join(os.tmpdir(), "fp-events-")), "events.jsonl")

describe("job events files", () => {
  it("the engine reads what the job appended since it last looked, complete lines only", () => {
    const file = tmpFile()
    const writer = openEventsWriter(file, 10_000)
    const cursor = newCursor()
    writer.write({ t: "start", attempt: 0, host: "n1", pid: 1, at: 1 }, true)
    writer.write({ t: "metric", name: "loss", step: 1, value: 5.5 })
    expect(readEvents(file, cursor).events.map((e) => e.t)).toEqual(["start"])
    writer.write({ t: "metric", name: "loss", step: 2, value: null }, true)
    expect(readEvents(file, cursor).events).toEqual([
      { t: "metric", name: "loss", step: 1, value: 5.5 },
      { t: "metric", name: "loss", step: 2, value: null }
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
    expect(events).toEqual([{ t: "result", value: { note: "λ→∞" } }])
    expect(malformed).toEqual(["not json"])
  })

  it("a missing file has no events yet", () => {
    expect(readEvents(path.join(os.tmpdir(), "fp-no-such-events"), newCursor()).events).toEqual([])
  })
})
