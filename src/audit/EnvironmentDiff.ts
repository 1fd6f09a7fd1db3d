/**
 * The environment then and now: for each snapshot the audited executions recorded, what differs from
 * this machine (project commit, Node, platform, compilers, GPUs and drivers); and for each worker
 * binary they ran, whether the binary there now is the same.
 */
import type { EnvironmentDifference, EnvironmentSnapshot, RecordedEnvironment, WorkerBinary } from "../domain/Audit.ts"
import type { EnvironmentRow, ExecutionRow } from "../lineage/Lineage.ts"

export const toSnapshot = (row: EnvironmentRow): EnvironmentSnapshot => ({
  id: row.id,
  gitCommit: row.gitCommit,
  gitDirty: row.gitDirty,
  nodeVersion: row.nodeVersion,
  platform: row.platform,
  host: row.host,
  compilers: row.compilers,
  gpus: row.gpus
})

const gpuList = (gpus: EnvironmentSnapshot["gpus"]): string | null =>
  gpus.length === 0 ? null : gpus.map((g) => `${g.name} (driver ${g.driver})`).join(", ")

export const diffEnvironments = (
  recorded: EnvironmentSnapshot,
  current: EnvironmentSnapshot
): ReadonlyArray<EnvironmentDifference> => {
  const out: Array<EnvironmentDifference> = []
  const field = (name: string, a: string | null, b: string | null) => {
    if (a !== b) out.push({ field: name, recorded: a, current: b })
  }
  field("commit", recorded.gitCommit, current.gitCommit)
  field(
    "uncommitted changes",
    recorded.gitDirty === null ? null : String(recorded.gitDirty),
    current.gitDirty === null ? null : String(current.gitDirty)
  )
  field("node", recorded.nodeVersion, current.nodeVersion)
  field("platform", recorded.platform, current.platform)
  field("host", recorded.host, current.host)
  for (const name of [...new Set([...Object.keys(recorded.compilers), ...Object.keys(current.compilers)])].sort()) {
    field(`compiler ${name}`, recorded.compilers[name] ?? null, current.compilers[name] ?? null)
  }
  field("gpus", gpuList(recorded.gpus), gpuList(current.gpus))
  return out
}

export const recordedEnvironments = (
  executions: ReadonlyArray<ExecutionRow>,
  environments: ReadonlyMap<string, EnvironmentRow>,
  current: EnvironmentSnapshot
): ReadonlyArray<RecordedEnvironment> => {
  const byId = new Map<string, Array<ExecutionRow>>()
  for (const execution of executions) {
    if (execution.environmentId === null) continue
    const list = byId.get(execution.environmentId)
    if (list) list.push(execution)
    else byId.set(execution.environmentId, [execution])
  }
  const out: Array<RecordedEnvironment> = []
  for (const [id, list] of byId) {
    const row = environments.get(id)
    if (row === undefined) continue
    const snapshot = toSnapshot(row)
    out.push({
      environment: snapshot,
      executions: list.length,
      stages: [...new Set(list.map((e) => e.stageId))].sort().slice(0, 5),
      differences: diffEnvironments(snapshot, current)
    })
  }
  return out.sort((a, b) => b.executions - a.executions)
}

export interface WorkerUse {
  readonly path: string
  readonly recordedHash: string
  readonly currentHash: string | null
}

/** Groups the worker binaries executions ran by (path, recorded hash). */
export const workerBinaries = (uses: ReadonlyArray<WorkerUse>): ReadonlyArray<WorkerBinary> => {
  const groups = new Map<string, { use: WorkerUse; count: number }>()
  for (const use of uses) {
    const key = `${use.path}\0${use.recordedHash}`
    const group = groups.get(key)
    if (group) group.count++
    else groups.set(key, { use, count: 1 })
  }
  return [...groups.values()].map(({ count, use }) => ({
    path: use.path,
    recordedHash: use.recordedHash,
    currentHash: use.currentHash,
    executions: count,
    changed: use.currentHash !== use.recordedHash
  }))
}
