/**
 * Parsers for what Slurm's commands print, in the fixed formats the client asks for. Kept pure, so
 * they are tested against captured output without a cluster.
 */

/** One job (or array task) as the client sees it, whichever command reported it. */
export interface JobInfo {
  /** "1234", or "1234_5" for an array task. */
  readonly jobId: string
  /** The base state, e.g. CANCELLED for "CANCELLED by 0". */
  readonly state: string
  readonly reason: string | null
  readonly nodeList: string | null
  readonly exitCode: number | null
  readonly signal: number | null
  readonly restarts: number | null
  readonly startedAt: number | null
  readonly endedAt: number | null
  /** The job's time limit as Slurm prints it ("1-00:00:00", "UNLIMITED"), where the command says. */
  readonly timeLimit: string | null
}

const blank = (value: string | undefined): string | null =>
  value === undefined || value === "" || value === "(null)" || value === "None" || value === "None assigned" ?
    null :
    value

/** "CANCELLED by 0" -> "CANCELLED"; "CANCELLED+" (sacct's truncation mark) -> "CANCELLED". */
export const baseState = (state: string): string => state.trim().split(/\s+/)[0]!.replace(/\+$/, "").toUpperCase()

/** "2:15" -> exit code 2, signal 15. */
export const parseExitCode = (value: string | undefined): { exitCode: number | null; signal: number | null } => {
  const match = /^(\d+):(\d+)$/.exec(value ?? "")
  return match ? { exitCode: Number(match[1]), signal: Number(match[2]) } : { exitCode: null, signal: null }
}

/** Slurm prints local times without a zone ("2026-12-01T08:39:19"); "Unknown" and "None" mean not yet. */
export const parseSlurmTimestamp = (value: string | undefined): number | null => {
  if (value === undefined || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$/.test(value)) return null
  const ms = new Date(value).getTime()
  return Number.isNaN(ms) ? null : ms
}

/** The format the client passes to squeue: job id, state, reason, node list, time limit. */
export const squeueFormat = "%i|%T|%r|%N|%l"

export const parseSqueue = (stdout: string): ReadonlyArray<JobInfo> =>
  stdout.split("\n").filter((line) => line.trim() !== "").map((line) => {
    const [jobId = "", state = "", reason, nodeList, timeLimit] = line.split("|")
    return {
      jobId: jobId.trim(),
      state: baseState(state),
      reason: blank(reason?.trim()),
      nodeList: blank(nodeList?.trim()),
      exitCode: null,
      signal: null,
      restarts: null,
      startedAt: null,
      endedAt: null,
      timeLimit: blank(timeLimit?.trim())
    }
  })

/** `scontrol show job -o`: one line of Key=Value pairs per job. Values may contain '=' (TRES=cpu=1,mem=1G). */
export const parseScontrolFields = (line: string): ReadonlyMap<string, string> => {
  const fields = new Map<string, string>()
  // A field starts where a space is followed by Key= (keys may contain ':' and '/', e.g. ReqB:S:C:T, Socks/Node).
  for (const part of line.trim().split(/ (?=[A-Za-z][A-Za-z0-9_:/]*=)/)) {
    const eq = part.indexOf("=")
    if (eq > 0) fields.set(part.slice(0, eq), part.slice(eq + 1))
  }
  return fields
}

export const parseScontrolJobs = (stdout: string): ReadonlyArray<JobInfo> =>
  stdout.split("\n").filter((line) => line.startsWith("JobId=")).map((line) => {
    const f = parseScontrolFields(line)
    const arrayJob = f.get("ArrayJobId")
    const arrayTask = f.get("ArrayTaskId")
    // An array task is known by <array job>_<task>, as squeue -r and scancel name it.
    const jobId = arrayJob !== undefined && arrayTask !== undefined && /^\d+$/.test(arrayTask) ?
      `${arrayJob}_${arrayTask}` :
      f.get("JobId")!
    const restarts = f.get("Restarts")
    return {
      jobId,
      state: baseState(f.get("JobState") ?? "UNKNOWN"),
      reason: blank(f.get("Reason")),
      nodeList: blank(f.get("NodeList")),
      ...parseExitCode(f.get("ExitCode")),
      restarts: restarts === undefined ? null : Number(restarts),
      startedAt: parseSlurmTimestamp(f.get("StartTime")),
      endedAt: parseSlurmTimestamp(f.get("EndTime")),
      timeLimit: blank(f.get("TimeLimit"))
    }
  })

/** The fields the client asks sacct for (-n -P -X -o ...), in this order. */
export const sacctFields = "JobID,State,Reason,NodeList,ExitCode,Start,End,Timelimit"

export const parseSacct = (stdout: string): ReadonlyArray<JobInfo> =>
  stdout.split("\n").filter((line) => line.trim() !== "").map((line) => {
    const [jobId = "", state = "", reason, nodeList, exitCode, start, end, timeLimit] = line.split("|")
    return {
      jobId: jobId.trim(),
      state: baseState(state),
      reason: blank(reason),
      nodeList: blank(nodeList),
      ...parseExitCode(exitCode),
      restarts: null,
      startedAt: parseSlurmTimestamp(start),
      endedAt: parseSlurmTimestamp(end),
      timeLimit: blank(timeLimit)
    }
  })

/** `sbatch --parsable` prints "<job id>" or "<job id>;<cluster>". */
export const parseSbatch = (stdout: string): string | undefined => {
  const id = stdout.trim().split("\n").pop()?.split(";")[0]?.trim()
  return id !== undefined && /^\d+$/.test(id) ? id : undefined
}

/** The largest GPU count a node offers, from `sinfo -h -o %G` lines like "gpu:8", "gpu:h100:4(S:0-1)", "(null)". */
export const parseSinfoGpus = (stdout: string): number => {
  let most = 0
  for (const line of stdout.split("\n")) {
    for (const gres of line.split(",")) {
      const match = /^gpu(?::[^:()]+)?:(\d+)/.exec(gres.trim())
      if (match) most = Math.max(most, Number(match[1]))
    }
  }
  return most
}

/** Errors worth another try: a busy or restarting controller. */
export const isTransientError = (stderr: string): boolean =>
  /Socket timed out|Resource temporarily unavailable|Unable to contact slurm controller|Connection refused|Zero Bytes were transmitted|Transport endpoint|try again/i
    .test(stderr)

export const isAccountingDisabled = (stderr: string): boolean =>
  /accounting storage is disabled|Slurm accounting storage is disabled|slurmdbd.*(not|connection)/i.test(stderr)

export const isInvalidJobId = (stderr: string): boolean => /Invalid job id/i.test(stderr)
