/**
 * Garbage collection of the artifact store: plan what is not retained, and delete it crash-safely.
 *
 * Deleting is: (1) write a journal of what will go, (2) rename each directory or file into the gc's
 * own trash (`.gc/<id>/`; one atomic rename each, so the store sees an artifact either complete or
 * absent, never half-deleted), (3) mark the moved artifacts collected in lineage, in one transaction,
 * (4) remove the trash. A gc killed anywhere is finished by the next one: the journal says which
 * moved paths to mark and delete. Lineage rows stay, so history survives and `audit --restore` can
 * rebuild what was collected.
 */
import { Effect } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import type { Records } from "../audit/Records.ts"
import { StoreError } from "../domain/Errors.ts"
import type { GcMarkOnly, GcPlan, GcUnit, KeptGroup } from "../domain/Gc.ts"
import type { ArtifactRow } from "../lineage/Lineage.ts"
import { Lineage } from "../lineage/Lineage.ts"
import type { WorkspacePaths } from "../workspace/Workspace.ts"
import type { Retained, Roots } from "./Retention.ts"

export interface PlannedUnit extends GcUnit {
  readonly abs: string
}

export interface Plan {
  readonly units: ReadonlyArray<PlannedUnit>
  readonly markOnly: ReadonlyArray<GcMarkOnly>
  readonly kept: GcPlan["kept"]
}

/** Bytes under a path, split by whether deleting frees them (one link) or not (hard-linked elsewhere). */
export const diskUsage = (target: string): { bytes: number; sharedBytes: number } => {
  let bytes = 0
  let sharedBytes = 0
  const visit = (p: string) => {
    let st: fs.Stats
    try {
      st = fs.lstatSync(p)
    } catch {
      return
    }
    if (st.isDirectory()) {
      for (const entry of fs.readdirSync(p)) visit(path.join(p, entry))
    } else if (st.nlink > 1) {
      sharedBytes += st.size
    } else {
      bytes += st.size
    }
  }
  visit(target)
  return { bytes, sharedBytes }
}

const inside = (child: string, parent: string) => child === parent || child.startsWith(parent + "/")

export const planCollection = (
  ws: WorkspacePaths,
  records: Records,
  roots: Roots,
  retained: Retained,
  options: { readonly live: boolean }
): Plan => {
  const rel = (abs: string) => path.relative(ws.root, abs)
  const stageOf = (a: ArtifactRow) => records.executions.get(a.executionId)?.stageId ?? "(unknown)"
  const units: Array<PlannedUnit> = []
  const markOnly: Array<GcMarkOnly> = []
  const unit = (fields: Omit<PlannedUnit, "bytes" | "sharedBytes" | "path">): void => {
    units.push({ ...fields, path: rel(fields.abs), ...diskUsage(fields.abs) })
  }
  const artifactRef = (a: ArtifactRow) => ({ id: a.id, name: a.name })
  const mark = (a: ArtifactRow, why: string) =>
    markOnly.push({ id: a.id, name: a.name, stage: stageOf(a), path: a.path, why })

  const live = [...records.artifacts.values()].filter((a) => a.collectedAt === null)
  const keptPaths = live.filter((a) => retained.artifacts.has(a.id)).map((a) => a.path)
  const candidates = live.filter((a) => !retained.artifacts.has(a.id))

  // Output directories, one per path (re-executions of one fingerprint share theirs).
  const dirs = new Map<string, { executions: Array<string>; candidates: Array<ArtifactRow> }>()
  for (const execution of records.executions.values()) {
    const entry = dirs.get(execution.outputDir)
    if (entry) entry.executions.push(execution.id)
    else dirs.set(execution.outputDir, { executions: [execution.id], candidates: [] })
  }
  const loose: Array<ArtifactRow> = []
  for (const a of candidates) {
    const dir = records.executions.get(a.executionId)?.outputDir
    const entry = dir === undefined ? undefined : dirs.get(dir)
    if (entry !== undefined && inside(a.path, dir!)) entry.candidates.push(a)
    else loose.push(a)
  }

  const collectOne = (a: ArtifactRow) => {
    if (keptPaths.some((p) => inside(p, a.path) || inside(a.path, p))) {
      return mark(a, "its path now holds a kept artifact (the stage was re-executed with the same fingerprint)")
    }
    const abs = path.resolve(ws.root, a.path)
    if (!fs.existsSync(abs)) return mark(a, "already gone from the store")
    unit({
      kind: "artifact",
      abs,
      stage: stageOf(a),
      execution: a.executionId,
      artifacts: [artifactRef(a)]
    })
  }

  for (const [dir, entry] of dirs) {
    const abs = path.resolve(ws.root, dir)
    const hasKept = keptPaths.some((p) => inside(p, dir))
    if (!fs.existsSync(abs)) {
      for (const a of entry.candidates) mark(a, "already gone from the store")
      continue
    }
    if (hasKept || roots.protectedDirs.has(dir)) {
      if (!roots.protectedDirs.has(dir)) { for (const a of entry.candidates) collectOne(a) }
      continue
    }
    const newest = entry.executions.map((id) => records.executions.get(id)!).sort((a, b) =>
      b.startedAt - a.startedAt
    )[0]!
    unit({
      kind: "outputs",
      abs,
      stage: newest.stageId,
      execution: newest.id,
      artifacts: entry.candidates.map(artifactRef)
    })
  }
  for (const a of loose) collectOne(a)

  // Anything in the store that no execution recorded: outputs promoted by a run killed before it could
  // record them, or files put there by hand.
  const known = new Set([...dirs.keys()].map((d) => path.resolve(ws.root, d)))
  const ancestors = new Set<string>()
  for (const d of known) {
    for (let p = path.dirname(d); inside(p, ws.artifacts) && !ancestors.has(p); p = path.dirname(p)) ancestors.add(p)
  }
  const walk = (dir: string) => {
    let entries: Array<fs.Dirent>
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true })
    } catch {
      return
    }
    for (const entry of entries) {
      const abs = path.join(dir, entry.name)
      if (known.has(abs)) continue
      if (entry.isDirectory() && ancestors.has(abs)) walk(abs)
      else unit({ kind: "orphan", abs, stage: null, execution: null, artifacts: [] })
    }
  }
  walk(ws.artifacts)
  // The engine's own trash is emptied at the end of every run; a killed run leaves it behind.
  if (!options.live && fs.existsSync(ws.trash)) {
    unit({ kind: "trash", abs: ws.trash, stage: null, execution: null, artifacts: [] })
  }

  const groups = new Map<string, { artifacts: number; bytes: number }>()
  let keptBytes = 0
  for (const a of live) {
    const reason = retained.artifacts.get(a.id)
    if (reason === undefined) continue
    keptBytes += a.size
    const group = groups.get(reason) ?? { artifacts: 0, bytes: 0 }
    group.artifacts++
    group.bytes += a.size
    groups.set(reason, group)
  }
  const reasons: Array<KeptGroup> = [...groups].map(([reason, g]) => ({ reason, ...g })).sort((a, b) =>
    b.bytes - a.bytes
  )
  units.sort((a, b) => b.bytes - a.bytes || (a.path < b.path ? -1 : 1))
  markOnly.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : a.id < b.id ? -1 : 1))
  return { units, markOnly, kept: { artifacts: keptPaths.length, bytes: keptBytes, reasons } }
}

/** What a gc in progress records before it moves anything (`.gc/<id>/journal.json`). */
export interface Journal {
  readonly id: string
  readonly createdAt: number
  readonly units: ReadonlyArray<
    { readonly from: string; readonly to: string; readonly artifacts: ReadonlyArray<string> }
  >
  readonly markOnly: ReadonlyArray<string>
}

export const gcRoot = (ws: WorkspacePaths) => path.join(ws.root, ".gc")

const writeAtomically = (file: string, content: string) => {
  const tmp = `${file}.tmp`
  const fd = fs.openSync(tmp, "w")
  try {
    fs.writeSync(fd, content)
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
  fs.renameSync(tmp, file)
}

/** Marks artifacts collected and forgets the stat-cache rows of the paths that went, in one transaction. */
const markCollected = (ws: WorkspacePaths, ids: ReadonlyArray<string>, removed: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const lineage = yield* Lineage
    yield* lineage.markCollected(ids, removed).pipe(
      Effect.mapError((error) => new StoreError({ path: ws.database, reason: error.reason }))
    )
  })

/** Artifact ids and paths that gcs in progress are deleting (for `pin`, which must not race one). */
export const beingCollected = (ws: WorkspacePaths): { ids: ReadonlySet<string>; paths: ReadonlyArray<string> } => {
  const ids = new Set<string>()
  const paths: Array<string> = []
  const root = gcRoot(ws)
  if (!fs.existsSync(root)) return { ids, paths }
  for (const id of fs.readdirSync(root)) {
    try {
      const journal = JSON.parse(fs.readFileSync(path.join(root, id, "journal.json"), "utf8")) as Journal
      for (const unit of journal.units) {
        paths.push(unit.from)
        for (const a of unit.artifacts) ids.add(a)
      }
    } catch {
      // No journal yet: nothing was moved.
    }
  }
  return { ids, paths }
}

/** Finishes gcs that were killed: marks what they had moved, then deletes their trash. Returns units finished. */
export const recoverInterrupted = (ws: WorkspacePaths) =>
  Effect.gen(function*() {
    const root = gcRoot(ws)
    if (!fs.existsSync(root)) return 0
    let finished = 0
    for (const id of fs.readdirSync(root).sort()) {
      const dir = path.join(root, id)
      const journalFile = path.join(dir, "journal.json")
      if (fs.existsSync(journalFile)) {
        const journal = JSON.parse(fs.readFileSync(journalFile, "utf8")) as Journal
        // A unit is in our trash only if its rename happened; one still in place was never touched.
        const moved = journal.units.filter((u) => fs.existsSync(u.to))
        yield* markCollected(ws, [...moved.flatMap((u) => u.artifacts), ...journal.markOnly], moved.map((u) => u.from))
        finished += moved.length
      }
      fs.rmSync(dir, { recursive: true, force: true })
    }
    fs.rmSync(root, { recursive: true, force: true })
    return finished
  })

/**
 * Deletes a plan's units. Call holding the workspace lock. `recheck` runs once the journal is written
 * and says which units may still go: a pin made since the plan is honoured (`pin` inserts its row
 * before it looks for journals, and backs off when its target is in one).
 */
export const collect = <E, R>(
  ws: WorkspacePaths,
  plan: Plan,
  recheck: Effect.Effect<(unit: PlannedUnit) => boolean, E, R>
) =>
  Effect.gen(function*() {
    const id = crypto.randomUUID()
    const dir = path.join(gcRoot(ws), id)
    fs.mkdirSync(dir, { recursive: true })
    const units = plan.units.map((u, i) => ({ unit: u, to: path.join(dir, String(i)) }))
    const journal: Journal = {
      id,
      createdAt: Date.now(),
      units: units.map(({ to, unit }) => ({ from: unit.abs, to, artifacts: unit.artifacts.map((a) => a.id) })),
      markOnly: plan.markOnly.map((m) => m.id)
    }
    writeAtomically(path.join(dir, "journal.json"), JSON.stringify(journal))
    const moved: Array<{ unit: PlannedUnit; to: string }> = []
    const collectable = yield* recheck
    for (const entry of units) {
      if (!collectable(entry.unit)) continue
      try {
        fs.renameSync(entry.unit.abs, entry.to)
        moved.push(entry)
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
          return yield* new StoreError({
            path: entry.unit.abs,
            reason: `cannot move to the gc trash: ${String(error)}`
          })
        }
      }
    }
    yield* markCollected(
      ws,
      [...moved.flatMap(({ unit }) => unit.artifacts.map((a) => a.id)), ...plan.markOnly.map((m) => m.id)],
      moved.map(({ unit }) => unit.abs)
    )
    fs.rmSync(dir, { recursive: true, force: true })
    if (fs.readdirSync(gcRoot(ws)).length === 0) fs.rmdirSync(gcRoot(ws))
    return moved.map(({ unit }) => unit)
  })
