/**
 * The Slurm executor's domain: its settings (from the pipeline config) and the states of its jobs.
 * What a job runs from and reports back is the remote-job protocol (src/executor/remote/Protocol.ts).
 */
import { Schema } from "effect"

/**
 * What is wrong with a setting that holds a control character, or undefined. Settings end up in
 * `#SBATCH` lines of the batch script: a newline there would end the directive and make the rest a
 * command of the script (and Slurm ignores every directive after the first command).
 */
export const controlCharacterProblem = (value: string): string | undefined => {
  // eslint-disable-next-line no-control-regex
  const match = /[\u0000-\u001f\u007f]/.exec(value)
  if (match === null) return undefined
  const c = match[0]
  return c === "\n" ?
    "contains a newline" :
    c === "\r" ?
    "contains a carriage return" :
    c === "\t" ?
    "contains a tab" :
    `contains a control character (U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")})`
}

/** A string setting with no control characters (a path, a glob). */
const PlainString = Schema.String.pipe(Schema.filter((s) => controlCharacterProblem(s) ?? true))

/** Slurm's time formats: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS, or UNLIMITED. */
const SLURM_TIME = /^(?:\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d{1,2}(?::\d{1,2}(?::\d{1,2})?)?|UNLIMITED|INFINITE)$/i

export const SlurmTime = Schema.String.pipe(
  Schema.filter((s) =>
    controlCharacterProblem(s) ??
      (SLURM_TIME.test(s) ||
        `expected a Slurm time limit (minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS or UNLIMITED), got ${
          JSON.stringify(s)
        }`)
  )
)

/**
 * A partition, account or QOS name. Slurm's names are single words; beyond whitespace, the characters
 * refused are the ones the `#SBATCH` line parser treats specially (quotes, backslash, `#`, which
 * starts a comment there). A partition may be a comma-separated list (the job runs in whichever
 * starts it first); an account or a QOS is one name.
 */
const slurmName = (what: string, list: boolean) =>
  Schema.String.pipe(
    Schema.filter((s) => {
      const control = controlCharacterProblem(s)
      if (control !== undefined) return control
      if (s === "") return `is empty (expected a ${what})`
      if (/\s/.test(s)) return `contains whitespace (expected a ${what})`
      const bad = /["'\\#]/.exec(s)
      if (bad !== null) return `contains ${JSON.stringify(bad[0])}, which no ${what} has`
      if (s.startsWith("-")) return `starts with '-' (expected a ${what}, not a flag)`
      if (list) {
        if (s.split(",").some((part) => part === "")) return `has an empty name in its list ${JSON.stringify(s)}`
      } else if (s.includes(",")) {
        return `contains a comma (expected one ${what})`
      }
      return true
    })
  )

export const SlurmPartition = slurmName("partition name", true)
export const SlurmAccount = slurmName("account name", false)
export const SlurmQos = slurmName("QOS name", false)

/**
 * Extra sbatch flags. They go to sbatch as separate arguments, never through a shell or the batch
 * script; sbatch takes the first word that is not an option, or an option's value, as the script. So
 * the list starts with a flag, and a value only follows a flag (`-p gpu`, `--constraint h100`).
 */
export const SbatchFlags = Schema.Array(
  Schema.String.pipe(
    Schema.filter((s) => controlCharacterProblem(s) ?? (s !== "" || "is an empty flag"))
  )
).pipe(
  Schema.filter((flags) => {
    for (const [i, flag] of flags.entries()) {
      if (flag.startsWith("-")) continue
      if (i === 0) return `expected flags starting with '-', got ${JSON.stringify(flag)} first`
      if (!flags[i - 1]!.startsWith("-")) {
        return `${JSON.stringify(flag)} follows the value ${
          JSON.stringify(flags[i - 1])
        }: expected a flag starting with '-'`
      }
    }
    return true
  })
)

const Positive = Schema.Number.pipe(Schema.positive())
const PositiveInt = Schema.Int.pipe(Schema.positive())

/** Settings for the stages whose id matches `match` (a glob: `*` matches any characters). Later rules win. */
export const SlurmStageRule = Schema.Struct({
  match: PlainString,
  partition: Schema.optional(SlurmPartition),
  account: Schema.optional(SlurmAccount),
  qos: Schema.optional(SlurmQos),
  time: Schema.optional(SlurmTime),
  /** Extra sbatch flags, e.g. ["--exclusive", "--constraint=h100"]; they override generated ones. */
  sbatch: Schema.optional(SbatchFlags),
  /** Whether these stages may be submitted together as a job array. */
  array: Schema.optional(Schema.Boolean)
})
export type SlurmStageRule = typeof SlurmStageRule.Type

export const SlurmSettings = Schema.Struct({
  partition: Schema.optional(SlurmPartition),
  account: Schema.optional(SlurmAccount),
  qos: Schema.optional(SlurmQos),
  time: Schema.optional(SlurmTime),
  /** Extra sbatch flags, passed to sbatch as arguments (never written into the batch script). */
  sbatch: Schema.optionalWith(SbatchFlags, { default: () => [] }),
  /** Submissions per second (sbatch calls; an array job is one), and how many may go at once. */
  submitRate: Schema.optionalWith(Positive, { default: () => 2 }),
  submitBurst: Schema.optionalWith(PositiveInt, { default: () => 5 }),
  /** Seconds between two looks at the queue (one squeue call for all of a run's jobs). */
  poll: Schema.optionalWith(Positive, { default: () => 3 }),
  /** Submit stages of the same kind and resources that become ready together as one job array. */
  arrays: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  arrayMax: Schema.optionalWith(PositiveInt, { default: () => 1000 }),
  /**
   * Resubmissions of a job that Slurm preempted or lost with its node, or of a resumable stage's job
   * that hit its time limit after writing a new checkpoint (requeues by Slurm do not count).
   */
  maxResubmits: Schema.optionalWith(Schema.Int.pipe(Schema.nonNegative()), { default: () => 3 }),
  /** GPUs per node that stages may settle on (backend auto -> cuda), or `auto` to ask sinfo. */
  gpusPerNode: Schema.optionalWith(Schema.Union(Schema.Int.pipe(Schema.nonNegative()), Schema.Literal("auto")), {
    default: () => "auto" as const
  }),
  /** The node executable on compute nodes; by default the one running the engine. */
  node: Schema.optional(PlainString),
  /** Seconds to wait for cancelled jobs to end before giving up on them. */
  cancelTimeout: Schema.optionalWith(Positive, { default: () => 60 }),
  stages: Schema.optionalWith(Schema.Array(SlurmStageRule), { default: () => [] })
})
export type SlurmSettings = typeof SlurmSettings.Type
export type SlurmSettingsInput = typeof SlurmSettings.Encoded

/** Slurm job states after which the job will not run again by itself. */
export const terminalStates: ReadonlySet<string> = new Set([
  "BOOT_FAIL",
  "CANCELLED",
  "COMPLETED",
  "DEADLINE",
  "FAILED",
  "NODE_FAIL",
  "OUT_OF_MEMORY",
  "PREEMPTED",
  "REVOKED",
  "TIMEOUT"
])

/** Terminal states caused by the cluster rather than the stage: the job is worth submitting again. */
export const lostStates: ReadonlySet<string> = new Set(["BOOT_FAIL", "NODE_FAIL", "PREEMPTED"])

/** States of a job that Slurm put back in the queue (it runs again under the same id). */
export const requeuedStates: ReadonlySet<string> = new Set(["REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD"])
