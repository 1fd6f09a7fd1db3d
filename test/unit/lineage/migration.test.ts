import { describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import { drizzle } from "drizzle-orm/better-sqlite3"
import { migrate } from "drizzle-orm/better-sqlite3/migrator"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { runSettings } from "../../../src/audit/RecordedRun.ts"
import { Lineage } from "../../../src/lineage/Lineage.ts"
import { fromRoot } from "../../../src/ProjectRoot.ts"
import { Workspace } from "../../../src/workspace/Workspace.ts"

/** The migrations as they stood before runs recorded their settings: 0000 to 0004. */
const migrationsBeforeRunSettings = (): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fp-migrations-"))
  fs.cpSync(fromRoot("drizzle"), dir, { recursive: true })
  const journalFile = path.join(dir, "meta", "_journal.json")
  const journal = JSON.parse(fs.readFileSync(journalFile, "utf8")) as { entries: Array<{ idx: number }> }
  journal.entries = journal.entries.filter((e) => e.idx <= 4)
  fs.writeFileSync(journalFile, JSON.stringify(journal))
  return dir
}

/** A workspace whose database was made by the previous schema, with one run recorded by it. */
const oldWorkspace = (): string => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "fp-old-ws-"))
  const sqlite = new Database(path.join(root, "lineage.sqlite"))
  sqlite.pragma("journal_mode = WAL")
  migrate(drizzle(sqlite), { migrationsFolder: migrationsBeforeRunSettings() })
  const columns = (sqlite.pragma("table_info(runs)") as Array<{ name: string }>).map((c) => c.name)
  expect(columns).not.toContain("config")
  sqlite.prepare(
    `insert into runs (id, pipeline, preset, overrides, argv, executor, host, pid, status, started_at)
     values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
  ).run(
    "old-run",
    "toy",
    "tiny",
    JSON.stringify({ "train.steps": "3" }),
    JSON.stringify(["run", "--preset", "tiny", "toy", "--config", "corpus=/data/c", "--gpus", "0,1"]),
    "local",
    "h",
    1,
    "succeeded",
    5
  )
  sqlite.close()
  return root
}

const lineageOf = (root: string) => Layer.provide(Lineage.Default, Workspace.layer(root))

describe("the run_settings migration", () => {
  it.scoped("applies to a database made before it, keeping old runs readable", () =>
    Effect.gen(function*() {
      const lineage = yield* Lineage
      const [old] = (yield* lineage.history()).runs
      expect(old).toMatchObject({
        id: "old-run",
        overrides: { "train.steps": "3" },
        pipelineSource: null,
        config: null,
        gpus: null,
        executorSettings: null
      })
      // Such a run has only its command line to say how it was started.
      expect(runSettings(old!)).toEqual({
        pipeline: "toy",
        config: { corpus: "/data/c" },
        gpus: { _tag: "CommandLine", spec: "0,1" }
      })

      yield* lineage.startRun({
        id: "new-run",
        pipeline: "toy",
        preset: "tiny",
        overrides: {},
        argv: ["run", "toy", "--config", "corpus=/elsewhere"],
        executor: "slurm",
        host: "h",
        pid: 2,
        status: "running",
        startedAt: 6,
        pipelineSource: "/p/toy.ts",
        config: { corpus: "/data/c", "slurm.gpusPerNode": "4" },
        gpus: [],
        executorSettings: { gpus: 4, jobs: 1000, cpus: 2 }
      })
      const recorded = (yield* lineage.history()).runs.find((r) => r.id === "new-run")!
      // What the run recorded wins over its command line.
      expect(runSettings(recorded)).toEqual({
        pipeline: "/p/toy.ts",
        config: { corpus: "/data/c", "slurm.gpusPerNode": "4" },
        gpus: { _tag: "Recorded", count: 4 }
      })
    }).pipe(Effect.provide(lineageOf(oldWorkspace()))))
})
