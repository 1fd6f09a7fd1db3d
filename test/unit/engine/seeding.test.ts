import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { chooseSeed, linkReusedOutputs, prefixRows } from "../../../src/engine/Seeding.ts"
import type { PrefixCandidate } from "../../../src/lineage/Lineage.ts"
import type { StagePrefixes } from "../../../src/Stage.ts"

/** States of a run that agrees with `shared` up to step `agreeUpTo`, and is its own after. */
const run = (name: string, total: number, outputs: ReadonlyArray<number>, agreeUpTo: number): StagePrefixes => ({
  family: "f",
  total,
  steps: Object.fromEntries(outputs.map((s) => [`iter_${s}`, s])),
  at: (step) => (step <= agreeUpTo ? `shared@${step}` : `${name}@${step}`)
})

const recorded = (
  execution: string,
  prefixes: StagePrefixes,
  options: { durationMs?: number; seededStep?: number } = {}
): Array<PrefixCandidate> =>
  Object.entries(prefixes.steps).map(([name, step]) => ({
    step,
    prefix: prefixes.at(step),
    artifact: { id: `${execution}/${name}`, name, path: `artifacts/${execution}/${name}`, hash: "h" },
    execution: {
      id: execution,
      stageId: `train/${execution}`,
      durationMs: options.durationMs ?? null,
      seededStep: options.seededStep ?? null
    }
  }))

const all = () => true

describe("choosing where a stale stage starts", () => {
  it("takes the newest recorded state with its prefix, reusing the own outputs up to there", () => {
    const constant = run("const", 100, [20, 40, 60, 80, 90, 100], 100)
    const branch = run("branch", 100, [20, 40, 60, 80, 100], 90)
    const choice = chooseSeed(branch, recorded("c", constant, { durationMs: 1000 }), [], all)
    expect(choice?.step).toBe(90)
    expect(choice?.source._tag === "Recorded" && choice.source.candidate.artifact.name).toBe("iter_90")
    expect(choice?.reused.map((r) => r.output)).toEqual(["iter_20", "iter_40", "iter_60", "iter_80"])
    // 90 of the 100 steps that took the constant run 1 s.
    expect(choice?.savedMs).toBe(900)
  })

  it("never starts from its own last state, nor from a state whose prefix differs", () => {
    const a = run("a", 50, [25, 50], 50)
    expect(chooseSeed(run("b", 50, [25, 50], 50), recorded("a", a), [], all)?.step).toBe(25)
    expect(chooseSeed(run("c", 50, [25, 50], 10), recorded("a", a), [], all)).toBeUndefined()
    // Recorded states come by family from lineage; planned ones are filtered here.
    expect(chooseSeed({ ...run("d", 50, [25, 50], 50), family: "g" }, [], [{ stage: "a", prefixes: a }], all))
      .toBeUndefined()
  })

  it("steps back to a state before any own output it could not reuse", () => {
    // The recorded run saved at 30 and 60; the stale one also needs a checkpoint at 45 it cannot get.
    const recordedRun = run("r", 90, [30, 60, 90], 90)
    const stale = run("s", 90, [30, 45, 90], 80)
    const choice = chooseSeed(stale, recorded("r", recordedRun), [], all)
    expect(choice?.step).toBe(30)
    expect(choice?.reused.map((r) => r.output)).toEqual(["iter_30"])
  })

  it("skips states whose files are gone or altered", () => {
    const r = run("r", 90, [30, 60, 90], 90)
    const choice = chooseSeed(run("s", 90, [90], 90), recorded("r", r), [], (c) => c.step !== 60)
    expect(choice?.step).toBe(30)
  })

  it("counts states an earlier stage of the run will write, preferring recorded ones", () => {
    const constant = run("const", 100, [50, 90], 100)
    const branch = run("branch", 100, [100], 90)
    const planned = chooseSeed(branch, [], [{ stage: "train/const", prefixes: constant }], all)
    expect(planned?.source).toEqual({ _tag: "Planned", stage: "train/const", output: "iter_90" })
    expect(planned?.savedMs).toBeNull()
    const both = chooseSeed(branch, recorded("c", constant), [{ stage: "train/const", prefixes: constant }], all)
    expect(both?.source._tag).toBe("Recorded")
  })

  it("prorates the saved time over the steps the recording execution computed itself", () => {
    const seeded = run("a", 100, [60, 80, 100], 100)
    // That execution was itself seeded at 50: its 2 s bought steps 50..100.
    const choice = chooseSeed(
      run("b", 100, [100], 80),
      recorded("a", seeded, { durationMs: 2000, seededStep: 50 }),
      [],
      all
    )
    expect(choice?.step).toBe(80)
    expect(choice?.savedMs).toBe(3200)
  })

  it("records a prefix row for each output that is a state, and none for other outputs", () => {
    const r = run("r", 10, [5, 10], 10)
    expect(prefixRows(r, [{ id: "a1", name: "iter_5" }, { id: "a2", name: "log.txt" }])).toEqual([
      { artifactId: "a1", family: "f", step: 5, prefix: "shared@5" }
    ])
  })

  it("links reused outputs into staging, leaving what an earlier attempt kept", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "seeding-"))
    const source = path.join(root, "artifacts", "c", "iter_5")
    fs.mkdirSync(path.join(source, "sub"), { recursive: true })
    fs.writeFileSync(path.join(source, "model.bin"), "weights")
    fs.writeFileSync(path.join(source, "sub", "state.json"), "{}")
    const work = path.join(root, "staging")
    fs.mkdirSync(path.join(work, "iter_2"), { recursive: true })
    fs.writeFileSync(path.join(work, "iter_2", "mine"), "kept")
    const candidate = (name: string): PrefixCandidate => ({
      step: 5,
      prefix: "p",
      artifact: { id: name, name, path: `artifacts/c/${name}`, hash: "h" },
      execution: { id: "c", stageId: "train/c", durationMs: null, seededStep: null }
    })
    linkReusedOutputs(work, root, [
      { output: "iter_5", source: { _tag: "Recorded", candidate: candidate("iter_5") } },
      { output: "iter_2", source: { _tag: "Recorded", candidate: candidate("iter_2") } }
    ])
    expect(fs.readFileSync(path.join(work, "iter_5", "model.bin"), "utf8")).toBe("weights")
    expect(fs.statSync(path.join(work, "iter_5", "model.bin")).ino).toBe(
      fs.statSync(path.join(source, "model.bin")).ino
    )
    expect(fs.readFileSync(path.join(work, "iter_5", "sub", "state.json"), "utf8")).toBe("{}")
    expect(fs.readdirSync(path.join(work, "iter_2"))).toEqual(["mine"])
    fs.rmSync(root, { recursive: true, force: true })
  })
})
