import { Data } from "effect"

/** A Slurm setting in the pipeline config (a `--config slurm...` entry or a settings file) that does not decode. */
export class SlurmSettingsError extends Data.TaggedError("SlurmSettingsError")<{
  /** Where the value came from: `--config slurm.poll`, or a settings file's path. */
  readonly source: string
  /** The setting within the source (`stages.0.time` of a file, `sbatch.1` of `--config slurm.sbatch`); empty when the source names it. */
  readonly key: string
  readonly reason: string
}> {
  override get message(): string {
    return `Slurm settings: ${this.source}: ${this.key === "" ? "" : `${this.key}: `}${this.reason}`
  }
}

/** A Slurm command that failed (after retries, for a busy controller). */
export class SlurmCommandFailed extends Data.TaggedError("SlurmCommandFailed")<{
  readonly command: string
  readonly exitCode: number | null
  readonly stderr: string
}> {
  override get message(): string {
    const detail = this.stderr.trim().split("\n").slice(-3).join("; ")
    return `${this.command} failed${this.exitCode === null ? "" : ` (exit ${this.exitCode})`}${
      detail ? `: ${detail}` : ""
    }`
  }
}
