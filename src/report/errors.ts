import { Data } from "effect"

/** Something the report needs cannot be read: names the stage, output or file, and why. */
export class ReportError extends Data.TaggedError("ReportError")<{
  readonly where: string
  readonly reason: string
}> {
  override get message(): string {
    return `report: ${this.where}: ${this.reason}`
  }
}
