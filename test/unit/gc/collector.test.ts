import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { loadRecords } from "../../../src/audit/Records.ts"
import type { Journal, PlannedUnit } from "../../../src/gc/Collector.ts"
import { collect, gcRoot, planCollection, recoverInterrupted } from "../../../src/gc/Collector.ts"
import type { Roots } from "../../../src/gc/Retention.ts"
import { retain } from "../../../src/gc/Retention.ts"
import { Lineage } from "../../../src/lineage/Lineage.ts"
import { Workspace, workspacePaths } from "../../../src/workspace/Workspace.ts"
import { environment } from "../audit/fakeLineage.ts"

/**
 * A workspace on disk; `recorded` fills it with a few executions recorded the way the engine records
 * them, and the files they name.
 */
const setup = () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "fp-gc-"))
  const ws = workspacePaths(root)
  const layer = Layer.provideMerge(Lineage.Default, Workspace.layer(root))
  const write = (rel: string, data: string | Buffer) => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true })
    fs.writeFileSync(path.join(root, rel), data)
  }
  const record = (id: string, outputDir: string, outputs: Record<string, number>, options: { write?: boolean } = {}) =>
    Effect.gen(function*() {
      const lineage = yield* Lineage
      yield* lineage.startExecution({
        id,
        runId: "r",
        stageId: `stage-${id}`,
        fingerprint: id,
        version: "1",
        params: {},
        inputHashes: {},
        status: "succeeded",
        startedAt: id.charCodeAt(0),
        host: "h",
        executor: "local",
        logPath: "l",
        outputDir,
        environmentId: environment.id
      }, [])
      const artifacts = Object.entries(outputs).map(([name, size]) => {
        const rel = `${outputDir}/${name}`
        if (options.write !== false) write(rel, Buffer.alloc(size))
        return {
          id: `${id}/${name}`,
          executionId: id,
          name,
          path: rel,
          kind: "file" as const,
          hash: "h",
          size,
          createdAt: 0
        }
      })
      yield* lineage.finishExecution(id, { status: "succeeded", durationMs: 0, artifacts })
    })
  const init = Effect.gen(function*() {
    const lineage = yield* Lineage
    yield* lineage.startRun({
      id: "r",
      pipeline: "p",
      overrides: {},
      argv: [],
      executor: "local",
      host: "h",
      pid: 1,
      status: "succeeded",
      startedAt: 0
    })
    yield* lineage.putEnvironment(environment)
    yield* record("a", "artifacts/s/aaaa", { out: 100 })
    yield* record("b", "artifacts/s/bbbb", { out: 200 })
    // c ran with a's fingerprint before a: same directory, and a replaced its bytes.
    yield* record("c", "artifacts/s/aaaa", { out: 100 }, { write: false })
    yield* record("d", "artifacts/t/dddd", { keep: 10, drop: 20 })
    yield* record("e", "artifacts/s/eeee", { out: 5 }, { write: false })
  })
  const recorded = Effect.tap(init, () =>
    Effect.sync(() => {
      write("artifacts/orphan/ffff/x", Buffer.alloc(7))
      // A hard link (as a source stage makes): deleting it frees nothing.
      fs.linkSync(path.join(root, "artifacts/s/bbbb/out"), path.join(root, "outside-copy"))
    }))
  return { root, ws, layer, recorded }
}

type Setup = ReturnType<typeof setup>

/** Runs a test's body against a fresh recorded workspace. */
const inWorkspace = <A, E>(body: (ws: Setup) => Effect.Effect<A, E, Lineage | Workspace>) =>
  Effect.suspend(() => {
    const ws = setup()
    return Effect.zipRight(ws.recorded, body(ws)).pipe(Effect.provide(ws.layer))
  })

const roots: Roots = {
  executions: new Map([["a", "latest run"]]),
  artifacts: new Map([["d/keep", "pinned"]]),
  protectedDirs: new Set(),
  warnings: []
}

const planned = (ws: Setup) =>
  Effect.map(loadRecords, (records) => planCollection(ws.ws, records, roots, retain(records, roots), { live: false }))

const collectedAt = Effect.map(
  Effect.flatMap(Lineage, (l) => l.history()),
  (history) => Object.fromEntries(history.artifacts.map((a) => [a.id, a.collectedAt !== null]))
)

describe("collection", () => {
  it.effect("plans whole output directories, single outputs, orphans, and rows with nothing left to delete", () =>
    inWorkspace((ws) =>
      Effect.gen(function*() {
        const plan = yield* planned(ws)
        expect(plan.units.map((u) => [u.kind, u.path, u.bytes, u.sharedBytes, u.artifacts.map((a) => a.id)])).toEqual([
          ["artifact", "artifacts/t/dddd/drop", 20, 0, ["d/drop"]],
          ["orphan", "artifacts/orphan", 7, 0, []],
          ["outputs", "artifacts/s/bbbb", 0, 200, ["b/out"]]
        ])
        expect(plan.markOnly.map((m) => [m.id, m.why])).toEqual([
          ["c/out", "its path now holds a kept artifact (the stage was re-executed with the same fingerprint)"],
          ["e/out", "already gone from the store"]
        ])
        expect(plan.kept).toMatchObject({ artifacts: 2, bytes: 110 })
      })
    ))

  it.effect("deletes the plan, marks its rows collected and forgets their stat-cache entries", () =>
    inWorkspace((ws) =>
      Effect.gen(function*() {
        const lineage = yield* Lineage
        yield* lineage.putFileStats([
          { path: path.join(ws.root, "artifacts/s/bbbb/out"), dev: "1", ino: "1", size: 200, mtimeNs: "1", hash: "h" },
          { path: path.join(ws.root, "artifacts/s/aaaa/out"), dev: "1", ino: "2", size: 100, mtimeNs: "1", hash: "h" }
        ])
        const plan = yield* planned(ws)
        const gone = yield* collect(ws.ws, plan, Effect.succeed(() => true))
        expect(gone).toHaveLength(3)
        for (const unit of plan.units) expect(fs.existsSync(path.join(ws.root, unit.path))).toBe(false)
        expect(fs.existsSync(path.join(ws.root, "artifacts/s/aaaa/out"))).toBe(true)
        expect(fs.existsSync(path.join(ws.root, "artifacts/t/dddd/keep"))).toBe(true)
        expect(fs.existsSync(gcRoot(ws.ws))).toBe(false)
        expect(yield* collectedAt).toEqual({
          "a/out": false,
          "b/out": true,
          "c/out": true,
          "d/keep": false,
          "d/drop": true,
          "e/out": true
        })
        const stats = yield* lineage.fileStats()
        expect(stats.map((s) => path.relative(ws.root, s.path))).toEqual(["artifacts/s/aaaa/out"])
      })
    ))

  it.effect("leaves a unit that stopped being garbage since the plan", () =>
    inWorkspace((ws) =>
      Effect.gen(function*() {
        const plan = yield* planned(ws)
        const gone = yield* collect(ws.ws, plan, Effect.succeed((u: PlannedUnit) => u.kind !== "outputs"))
        expect(gone.map((u) => u.kind).sort()).toEqual(["artifact", "orphan"])
        expect(fs.existsSync(path.join(ws.root, "artifacts/s/bbbb/out"))).toBe(true)
        expect((yield* collectedAt)["b/out"]).toBe(false)
      })
    ))

  it.effect("finishes a gc killed between moving and marking: what moved is marked, what did not is untouched", () =>
    inWorkspace((ws) =>
      Effect.gen(function*() {
        const plan = yield* planned(ws)
        // What collect leaves behind when killed after its first rename.
        const dir = path.join(gcRoot(ws.ws), "killed")
        fs.mkdirSync(dir, { recursive: true })
        const units = plan.units.map((u, i) => ({
          from: u.abs,
          to: path.join(dir, String(i)),
          artifacts: u.artifacts.map((a) => a.id)
        }))
        const journal: Journal = { id: "killed", createdAt: 0, units, markOnly: plan.markOnly.map((m) => m.id) }
        fs.writeFileSync(path.join(dir, "journal.json"), JSON.stringify(journal))
        fs.renameSync(units[0]!.from, units[0]!.to)
        expect((yield* collectedAt)["d/drop"]).toBe(false)

        const finished = yield* recoverInterrupted(ws.ws)
        expect(finished).toBe(1)
        expect(fs.existsSync(gcRoot(ws.ws))).toBe(false)
        const marks = yield* collectedAt
        expect(marks["d/drop"]).toBe(true)
        expect(marks["b/out"]).toBe(false)
        expect(fs.existsSync(path.join(ws.root, "artifacts/s/bbbb/out"))).toBe(true)
      })
    ))
})
