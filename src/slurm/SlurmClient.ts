/**
 * Slurm's command-line tools as a service: sbatch, squeue, scontrol, sacct, scancel and sinfo, each
 * asked for a fixed output format and parsed (Output.ts). A busy or restarting controller answers
 * with transient errors; those are retried with backoff before anything fails.
 */
import { Duration, Effect, Schedule } from "effect"
import { execa } from "execa"
import { SlurmCommandFailed } from "./errors.ts"
import type { JobInfo } from "./Output.ts"
import {
  isAccountingDisabled,
  isInvalidJobId,
  isTransientError,
  parseSacct,
  parseSbatch,
  parseScontrolJobs,
  parseSinfoGpus,
  parseSqueue,
  sacctFields,
  squeueFormat
} from "./Output.ts"

interface CommandOutput {
  readonly stdout: string
  readonly stderr: string
  readonly exitCode: number | null
}

/** Long lists of job ids go in chunks, to keep command lines and controller requests small. */
const CHUNK = 200

const chunks = <A>(items: ReadonlyArray<A>, size = CHUNK): Array<ReadonlyArray<A>> => {
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

const exec = (file: string, args: ReadonlyArray<string>): Effect.Effect<CommandOutput, SlurmCommandFailed> =>
  Effect.tryPromise({
    try: async () => {
      // cleanup: false keeps execa from installing signal-exit's handlers, which re-raise a Ctrl-C that
      // arrives while a command runs and so would kill the engine before it cancels its jobs.
      const result = await execa(file, [...args], { reject: false, timeout: 60_000, stdin: "ignore", cleanup: false })
      if (result.failed && result.exitCode === undefined) {
        throw new Error(result.code === "ENOENT" ? `${file} not found (is Slurm installed here?)` : result.shortMessage)
      }
      return { stdout: String(result.stdout), stderr: String(result.stderr), exitCode: result.exitCode ?? null }
    },
    catch: (cause) =>
      new SlurmCommandFailed({
        command: [file, ...args].join(" "),
        exitCode: null,
        stderr: cause instanceof Error ? cause.message : String(cause)
      })
  })

/** Retries while the controller answers with a transient error. */
const transientRetry = Schedule.exponential(Duration.millis(500), 2).pipe(
  Schedule.intersect(Schedule.recurs(6))
)

const run = (file: string, args: ReadonlyArray<string>, accept: (out: CommandOutput) => boolean = () => false) =>
  exec(file, args).pipe(
    Effect.flatMap((out) =>
      out.exitCode === 0 || accept(out) ?
        Effect.succeed(out) :
        Effect.fail(
          new SlurmCommandFailed({ command: [file, ...args].join(" "), exitCode: out.exitCode, stderr: out.stderr })
        )
    ),
    Effect.retry({ schedule: transientRetry, while: (error) => isTransientError(error.stderr) })
  )

export class SlurmClient extends Effect.Service<SlurmClient>()("flame-pipe/SlurmClient", {
  succeed: {
    /**
     * Submits a batch script with extra sbatch flags, each one argument (no shell sees them); returns
     * the job id (of the array, for an array job).
     */
    submit: (script: string, flags: ReadonlyArray<string> = []) =>
      Effect.flatMap(run("sbatch", ["--parsable", ...flags, script]), (out) => {
        const id = parseSbatch(out.stdout)
        return id === undefined ?
          Effect.fail(
            new SlurmCommandFailed({
              command: ["sbatch", ...flags, script].join(" "),
              exitCode: 0,
              stderr: `no job id in its output: ${out.stdout.trim()}`
            })
          ) :
          Effect.succeed(id)
      }),

    /** The jobs squeue still knows, finished ones included (for MinJobAge), array tasks one per line. */
    queue: (jobIds: ReadonlyArray<string>): Effect.Effect<ReadonlyArray<JobInfo>, SlurmCommandFailed> =>
      Effect.map(
        Effect.forEach(chunks(jobIds), (ids) =>
          Effect.map(
            run(
              "squeue",
              ["-h", "-r", "-t", "all", "-j", ids.join(","), "-o", squeueFormat],
              (out) => isInvalidJobId(out.stderr)
            ),
            (out) => (out.exitCode === 0 ? parseSqueue(out.stdout) : [])
          )),
        (parts) => parts.flat()
      ),

    /** Everything scontrol knows about a job (exit code, restarts, times); undefined once it is purged. */
    show: (jobId: string): Effect.Effect<JobInfo | undefined, SlurmCommandFailed> =>
      Effect.map(
        run("scontrol", ["show", "job", "-o", jobId], (out) => isInvalidJobId(out.stderr)),
        (out) => (out.exitCode === 0 ? parseScontrolJobs(out.stdout).find((j) => j.jobId === jobId) : undefined)
      ),

    /** Finished jobs from the accounting database; "disabled" when the cluster keeps no accounting. */
    accounting: (
      jobIds: ReadonlyArray<string>
    ): Effect.Effect<ReadonlyArray<JobInfo> | "disabled", SlurmCommandFailed> =>
      Effect.map(
        run(
          "sacct",
          ["-n", "-P", "-X", "-j", jobIds.join(","), "-o", sacctFields],
          (out) => isAccountingDisabled(out.stderr + out.stdout)
        ),
        (out) => (isAccountingDisabled(out.stderr + out.stdout) ? "disabled" as const : parseSacct(out.stdout))
      ),

    /** Cancels jobs; ones that already ended are not an error. */
    cancel: (jobIds: ReadonlyArray<string>) =>
      Effect.forEach(
        chunks(jobIds),
        (ids) => run("scancel", [...ids], (out) => isInvalidJobId(out.stderr)),
        { discard: true }
      ),

    /** The most GPUs one node of the partition (or the cluster) offers. */
    gpusPerNode: (partition: string | undefined) =>
      Effect.map(
        run("sinfo", ["-h", "-o", "%G", ...(partition === undefined ? [] : ["-p", partition])]),
        (out) => parseSinfoGpus(out.stdout)
      ),

    /** Fails with a clear message when the Slurm tools are missing or the controller does not answer. */
    check: Effect.asVoid(run("sinfo", ["-h", "-o", "%P"]))
  }
}) {}
