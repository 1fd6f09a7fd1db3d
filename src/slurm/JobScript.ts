/**
 * The batch script of a submission: #SBATCH directives from the stage's resources and its Slurm
 * settings, then one line that runs the stage through `flame-pipe job`. A job array runs several
 * stages of one kind; each task finds its spec and log by SLURM_ARRAY_TASK_ID. Extra sbatch flags of
 * the settings are not written into the script: they go to sbatch as arguments (sbatchArguments).
 */
import { controlCharacterProblem } from "../domain/Slurm.ts"
import type { Resources } from "../Stage.ts"
import type { StageSlurmSettings } from "./Settings.ts"

export interface BatchTask {
  readonly specPath: string
  readonly logPath: string
}

export interface BatchJob {
  readonly name: string
  readonly resources: Resources
  readonly settings: StageSlurmSettings
  /** One task is a plain job; more become a job array, task i running tasks[i]. */
  readonly tasks: ReadonlyArray<BatchTask>
  /** Where Slurm writes the job's own output (its messages about cancellation, time limits...). */
  readonly slurmOutput: string
  readonly chdir: string
  readonly requeue: boolean
  /** The command that runs a stage; `--spec <file>` is appended. */
  readonly command: ReadonlyArray<string>
}

const shortOptions: Readonly<Record<string, string>> = {
  A: "account",
  c: "cpus-per-task",
  D: "chdir",
  G: "gpus",
  J: "job-name",
  N: "nodes",
  a: "array",
  n: "ntasks",
  o: "output",
  p: "partition",
  q: "qos",
  t: "time"
}

/** The long option names set by a list of sbatch flags (`-p gpu`, `--time=10`, `--exclusive`). */
export const optionNames = (flags: ReadonlyArray<string>): ReadonlySet<string> => {
  const names = new Set<string>()
  for (const flag of flags) {
    if (flag.startsWith("--")) names.add(flag.slice(2).split("=")[0]!)
    else if (/^-[A-Za-z]/.test(flag)) names.add(shortOptions[flag[1]!] ?? flag[1]!)
  }
  return names
}

/** Options that conflict: an extra flag for one replaces the generated flags of all. */
const conflicts: Readonly<Record<string, ReadonlyArray<string>>> = {
  gres: ["gres", "gpus", "gpus-per-node", "gpus-per-task"],
  gpus: ["gres", "gpus", "gpus-per-node", "gpus-per-task"],
  "gpus-per-node": ["gres", "gpus", "gpus-per-node", "gpus-per-task"],
  mem: ["mem", "mem-per-cpu", "mem-per-gpu"],
  "mem-per-cpu": ["mem", "mem-per-cpu", "mem-per-gpu"],
  "mem-per-gpu": ["mem", "mem-per-cpu", "mem-per-gpu"]
}

/** The generated flags, as `--name=value`; those the settings' extra flags replace are left out. */
export const sbatchDirectives = (job: BatchJob): ReadonlyArray<string> => {
  const { resources, settings } = job
  const generated: Array<[string, string | undefined]> = [
    ["job-name", job.name],
    ["output", job.slurmOutput],
    ["open-mode", "append"],
    ["chdir", job.chdir],
    ["partition", settings.partition],
    ["account", settings.account],
    ["qos", settings.qos],
    ["time", settings.time],
    ["nodes", String(Math.max(1, resources.nodes))],
    ["ntasks-per-node", "1"],
    ["cpus-per-task", String(Math.max(1, resources.cpus))],
    ["mem", resources.memoryMb > 0 ? `${Math.ceil(resources.memoryMb)}M` : undefined],
    ["gres", resources.gpus > 0 ? `gpu:${resources.gpus}` : undefined],
    ["array", job.tasks.length > 1 ? `0-${job.tasks.length - 1}` : undefined]
  ]
  const overridden = new Set<string>()
  for (const name of optionNames(settings.sbatch)) {
    for (const conflicting of conflicts[name] ?? [name]) overridden.add(conflicting)
  }
  const flags = generated
    .filter(([name, value]) => value !== undefined && !overridden.has(name))
    .map(([name, value]) => `--${name}=${value}`)
  if (!overridden.has("requeue") && !overridden.has("no-requeue")) {
    flags.push(job.requeue ? "--requeue" : "--no-requeue")
  }
  return flags
}

/**
 * What sbatch gets before the script: the settings' extra flags, one argument each. Options on
 * sbatch's command line win over the script's directives (those they replace are left out anyway).
 */
export const sbatchArguments = (job: BatchJob): ReadonlyArray<string> => [...job.settings.sbatch]

/** A value that cannot be written into the batch script; thrown by batchScript. */
export class UnsafeDirective extends Error {}

/**
 * A flag as one word of an `#SBATCH` line. sbatch splits these lines at whitespace (even after a
 * backslash), ends them at a `#` outside double quotes, and inside double quotes takes `\` as an
 * escape; a newline cannot be written at all. Settings are checked for all this when they are read;
 * generated values (paths, the job name) are quoted here, and a control character in one is refused.
 */
export const directiveWord = (flag: string): string => {
  const problem = controlCharacterProblem(flag)
  if (problem !== undefined) throw new UnsafeDirective(`#SBATCH ${JSON.stringify(flag)}: ${problem}`)
  return /[\s"'\\#]/.test(flag) ? `"${flag.replace(/["\\]/g, (c) => `\\${c}`)}"` : flag
}

/** Single-quotes a word for bash. */
export const shellQuote = (word: string): string =>
  /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`

export const batchScript = (job: BatchJob): string => {
  const directives = sbatchDirectives(job).map((flag) => `#SBATCH ${directiveWord(flag)}`)
  const cases = job.tasks.map((task, i) =>
    `  ${i}) spec=${shellQuote(task.specPath)}; log=${shellQuote(task.logPath)} ;;`
  )
  return [
    "#!/bin/bash",
    ...directives,
    "# Written by flame-pipe's Slurm executor. The stage reports back through its events file;",
    "# its output goes to the stage's log in the workspace.",
    `case "\${SLURM_ARRAY_TASK_ID:-0}" in`,
    ...cases,
    `  *) echo "flame-pipe: no task \${SLURM_ARRAY_TASK_ID} in this job" >&2; exit 2 ;;`,
    "esac",
    `exec >>"$log" 2>&1`,
    `exec ${job.command.map(shellQuote).join(" ")} --spec "$spec"`,
    ""
  ].join("\n")
}
