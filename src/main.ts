/**
 * Runs the CLI with a given pipeline registry; prints failures as one clear line and exits non-zero.
 */
import { ValidationError } from "@effect/cli"
// Sub-path imports: the package index also loads the HTTP client (undici), which the CLI never uses.
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import type { Layer } from "effect"
import { Cause, Console, Effect, Exit } from "effect"
import { cli } from "./cli/Cli.ts"
import type { PipelineRegistry } from "./pipeline/Registry.ts"
import { isDiskFull } from "./workspace/DiskSpace.ts"

/**
 * A defect: something the code did not expect (a bug, or bad input that slipped past validation).
 * The command line gets its message in one line; the stack only with FLAME_PIPE_DEBUG=1.
 */
const unexpected = (cause: Cause.Cause<unknown>): string => {
  if (process.env.FLAME_PIPE_DEBUG === "1") return Cause.pretty(cause)
  const defects = [...Cause.defects(cause)]
  const messages = defects.map((d) => (d instanceof Error ? d.message : String(d)))
  // A full disk, or a domain error that escaped as a defect, already says what is wrong and where.
  const explained = defects.length > 0 && defects.every((d) => isDiskFull(d) || (d instanceof Error && "_tag" in d))
  if (explained) {
    return `error: ${messages.join("; ")}` +
      (defects.some((d) => isDiskFull(d)) && !messages.some((m) => m.includes("disk full"))
        ? "\n(the disk is full: free space on it and run again; what was recorded is kept)"
        : "")
  }
  return `error: ${messages.join("; ") || "unknown failure"}\n` +
    "(unexpected: this is a bug or an unchecked input; FLAME_PIPE_DEBUG=1 prints the stack trace)"
}

export const main = (registry: Layer.Layer<PipelineRegistry>) =>
  cli(process.argv).pipe(
    Effect.catchAllCause((cause) => {
      if (Cause.isInterruptedOnly(cause)) return Effect.sync(() => (process.exitCode = 130))
      const failures = [...Cause.failures(cause)]
      // @effect/cli has already printed its own validation errors (unknown option, missing argument).
      const report = failures.length === 0
        ? Console.error(unexpected(cause))
        : failures.every(ValidationError.isValidationError)
        ? Effect.void
        : Console.error(`error: ${failures.map((e) => (e instanceof Error ? e.message : String(e))).join("\n")}`)
      return Effect.zipRight(report, Effect.sync(() => (process.exitCode = 1)))
    }),
    Effect.provide(registry),
    Effect.provide(NodeContext.layer),
    (program) =>
      NodeRuntime.runMain(program, {
        disableErrorReporting: true,
        // Ctrl-C / SIGTERM interrupt the whole program from outside, past catchAllCause: exit 130 then,
        // as shells expect of an interrupted command (the default teardown would exit 0).
        teardown: (exit, onExit) =>
          onExit(
            Exit.isFailure(exit)
              ? (Cause.isInterruptedOnly(exit.cause) ? 130 : 1)
              : typeof process.exitCode === "number"
              ? process.exitCode
              : 0
          )
      })
  )
