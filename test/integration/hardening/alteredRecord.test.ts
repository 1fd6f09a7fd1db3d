import Database from "better-sqlite3"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { cli, executedStages, runJson, tempWorkspace } from "../../support/cli.ts"

/** Rewrites one column of the newest succeeded execution of a stage, leaving its fingerprint as it was. */
const alter = (ws: string, stage: string, column: "params" | "input_hashes" | "worker_hash", value: string) => {
  const db = new Database(path.join(ws, "lineage.sqlite"))
  try {
    const changed = db.prepare(
      `update executions set ${column} = ? where id =
         (select id from executions where stage_id = ? and status = 'succeeded' order by started_at desc limit 1)`
    ).run(value, stage).changes
    expect(changed).toBe(1)
  } finally {
    db.close()
  }
}

describe("a lineage row edited after the fact", () => {
  it("is not a cache hit: plan says why, run reruns the stage, show marks the row", async () => {
    const ws = tempWorkspace()
    expect((await runJson(["toy", "--workspace", ws])).summary?.executed).toBe(7)
    // The recorded params now claim another threshold; the fingerprint still names the old one.
    alter(ws, "filter", "params", JSON.stringify({ threshold: 500 }))

    const shown = await cli(["show", "filter", "--workspace", ws])
    expect(shown.exitCode).toBe(0)
    expect(shown.stdout).toMatch(/fingerprint [0-9a-f]{64} {2}\(ALTERED/)
    const shownJson = await cli(["show", "filter", "--workspace", ws, "--json"])
    expect(JSON.parse(shownJson.stdout).recordMatchesFingerprint).toBe(false)

    const planned = await cli(["plan", "toy", "--workspace", ws, "--json"])
    const entries = JSON.parse(planned.stdout).stages as Array<
      { stage: string; status: string; reasons: Array<{ _tag: string }> }
    >
    const filter = entries.find((s) => s.stage === "filter")!
    expect(filter.status).toBe("stale")
    expect(filter.reasons.map((r) => r._tag)).toEqual(["RecordAltered"])
    // Upstream of it everything still hits; downstream waits for its outputs.
    for (const entry of entries.filter((s) => s.stage !== "filter" && s.status === "stale")) {
      expect(new Set(entry.reasons.map((r) => r._tag))).toEqual(new Set(["UpstreamStale"]))
    }
    expect(entries.find((s) => s.stage === "generate")!.status).toBe("fresh")

    // The rerun reproduces the same kept numbers, so nothing downstream reruns.
    const rerun = await runJson(["toy", "--workspace", ws])
    expect(executedStages(rerun.summary)).toEqual(["filter"])
    // The fresh execution is consistent again and serves the cache.
    expect((await runJson(["toy", "--workspace", ws])).summary?.executed).toBe(0)
    const after = await cli(["show", "filter", "--workspace", ws])
    expect(after.stdout).not.toContain("ALTERED")
  })

  it.each(
    [
      ["sum", "input_hashes", JSON.stringify({ squares: "0".repeat(64) })],
      ["generate", "worker_hash", "f".repeat(64)]
    ] as const
  )("an edited %s %s counts as altered too", async (stage, column, value) => {
    const ws = tempWorkspace()
    await runJson(["toy", "--workspace", ws])
    alter(ws, stage, column, value)
    const planned = await cli(["plan", "toy", "--workspace", ws, "--json"])
    const altered = (JSON.parse(planned.stdout).stages as Array<{ stage: string; reasons: Array<{ _tag: string }> }>)
      .filter((s) => s.reasons.some((r) => r._tag === "RecordAltered")).map((s) => s.stage)
    expect(altered).toEqual([stage])
  })
})
