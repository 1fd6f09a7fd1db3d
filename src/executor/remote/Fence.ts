/**
 * Fencing of an execution's attempts. Slurm can run a stage more than once for one execution: it
 * requeues a job (same id, SLURM_RESTART_COUNT one higher) and the engine resubmits one that ended
 * PREEMPTED, NODE_FAIL or TIMEOUT. The attempt Slurm gave up on is not always dead: a node that
 * stopped answering its controller may still be running it, writing checkpoints into the staging
 * directory the next attempt resumes from, and events into the file the engine follows.
 *
 * So the engine, the only writer of an execution's fence file, names there the one attempt that may
 * write: (submission, attempt), ordered by submission, then attempt. It names a new submission
 * before submitting it, and a job's next attempt once it sees Slurm requeue the job or that attempt
 * announce itself. An attempt writes only while the fence names it (it waits, at its start, until
 * the engine has named it), and stops as soon as it names a later one; the engine takes events from
 * the current attempt only. The file is replaced by rename, so a reader sees the old or the new
 * token, never half of one.
 */
import * as fs from "node:fs"
import * as path from "node:path"

export interface FenceToken {
  /** The execution's submission (1 for its first job). */
  readonly submission: number
  /** Slurm's restart count of that submission's job. */
  readonly attempt: number
}

/** Negative when `a` is earlier than `b`, 0 when they are the same attempt, positive when later. */
export const compareTokens = (a: FenceToken, b: FenceToken): number =>
  a.submission !== b.submission ? a.submission - b.submission : a.attempt - b.attempt

export const describeToken = (token: FenceToken): string => `attempt ${token.attempt} of submission ${token.submission}`

/** Names `token` as the attempt that may write (the engine's side). */
export const writeFence = (file: string, token: FenceToken): void => {
  fs.mkdirSync(path.dirname(file), { recursive: true })
  const tmp = `${file}.${process.pid}.tmp`
  fs.writeFileSync(tmp, JSON.stringify({ submission: token.submission, attempt: token.attempt }) + "\n")
  fs.renameSync(tmp, file)
}

const isToken = (value: unknown): value is FenceToken =>
  typeof value === "object" && value !== null &&
  Number.isInteger((value as FenceToken).submission) && Number.isInteger((value as FenceToken).attempt)

/** The attempt the fence names; undefined while there is no readable fence (a job's side). */
export const readFence = (file: string): FenceToken | undefined => {
  try {
    const value: unknown = JSON.parse(fs.readFileSync(file, "utf8"))
    return isToken(value) ? { submission: value.submission, attempt: value.attempt } : undefined
  } catch {
    return undefined
  }
}

/**
 * Where an attempt stands: `current` may write; `superseded` must stop (a later attempt is named);
 * `pending` waits (the engine has not named it yet, or the fence cannot be read right now).
 */
export type FenceStanding = "current" | "superseded" | "pending"

export const standing = (file: string, mine: FenceToken): FenceStanding => {
  const named = readFence(file)
  if (named === undefined) return "pending"
  const order = compareTokens(named, mine)
  return order === 0 ? "current" : order > 0 ? "superseded" : "pending"
}
