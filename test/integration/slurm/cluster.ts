/**
 * What the Slurm tests share: whether they run, the cluster check, the CLI arguments that select the
 * executor, and lineage queries.
 *
 * The tests run when FLAME_SLURM_TESTS=1, which .ci/run sets after starting the test cluster
 * (scripts/ci/slurm-cluster.sh: one node in the default partition, a second one for multi-node jobs). With it set and no cluster answering they fail, naming the problem;
 * without it (a developer machine without Slurm) they are skipped.
 */
import Database from "better-sqlite3"
import { execa } from "execa"
import * as path from "node:path"
import { describe } from "vitest"
import { root } from "../../support/cli.ts"

export const slurmTestsEnabled = process.env.FLAME_SLURM_TESTS === "1"

export const describeSlurm = (name: string, body: () => void) =>
  slurmTestsEnabled ?
    describe(name, body) :
    describe.skip(`${name} (needs FLAME_SLURM_TESTS=1 and a cluster: scripts/ci/slurm-cluster.sh start)`, body)

/** Fails with a clear message when no Slurm controller answers or no node is up. */
export const requireCluster = async () => {
  const sinfo = await execa("sinfo", ["-h", "-o", "%t"], { reject: false })
  const states = String(sinfo.stdout).split("\n").map((s) => s.trim()).filter(Boolean)
  if (sinfo.exitCode !== 0 || !states.some((s) => /^(idle|mix|alloc)/.test(s))) {
    throw new Error(
      `FLAME_SLURM_TESTS=1 but there is no usable Slurm cluster: sinfo ${
        sinfo.failed && sinfo.exitCode === undefined ? "is not installed" : `said: ${sinfo.stderr || sinfo.stdout}`
      } (start one with scripts/ci/slurm-cluster.sh start)`
    )
  }
}

/** The executor, polled often: the test cluster starts jobs within a second. */
export const slurm = ["--executor", "slurm", "--config", "slurm.poll=0.25"]

export const pipelineModule = (name: string) =>
  path.join(root, "test", "integration", "slurm", "pipelines", `${name}.ts`)

export interface JobRow {
  readonly stage: string
  readonly executionStatus: string
  readonly executor: string
  readonly jobId: string
  readonly submission: number
  readonly state: string
  readonly nodeList: string | null
  readonly exitCode: number | null
  readonly restarts: number
  readonly script: string
}

export const slurmJobs = (workspace: string): Array<JobRow> => {
  const db = new Database(path.join(workspace, "lineage.sqlite"), { readonly: true })
  try {
    return db.prepare(`
      select e.stage_id as stage, e.status as executionStatus, e.executor, j.job_id as jobId, j.submission,
             j.state, j.node_list as nodeList, j.exit_code as exitCode, j.restarts, j.script
      from slurm_jobs j join executions e on e.id = j.execution_id order by j.submitted_at, j.job_id`).all() as Array<
      JobRow
    >
  } finally {
    db.close()
  }
}

/** The jobs recorded so far, or none while the run is still creating its database. */
export const slurmJobsSoFar = (workspace: string): Array<JobRow> => {
  try {
    return slurmJobs(workspace)
  } catch {
    return []
  }
}

export const queueStates = async (): Promise<Map<string, string>> => {
  const out = await execa("squeue", ["-h", "-r", "-t", "all", "-o", "%i|%T|%j"], { reject: false })
  return new Map(
    String(out.stdout).split("\n").filter(Boolean).map((l) => {
      const [id, state] = l.split("|")
      return [id!, state!]
    })
  )
}

export const waitFor = async <A>(
  probe: () => A | undefined | false | Promise<A | undefined | false>,
  what: string,
  timeoutMs = 120_000
): Promise<A> => {
  const start = Date.now()
  for (;;) {
    const value = await probe()
    if (value !== undefined && value !== false) return value
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}
