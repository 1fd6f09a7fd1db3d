/**
 * Entry point: run the CLI, print errors as one clear line, and exit non-zero on failure.
 */
import { ValidationError } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Cause, Console, Effect } from "effect"
import { cli } from "./cli/Cli.ts"

const program = cli(process.argv).pipe(
  Effect.catchAllCause((cause) => {
    if (Cause.isInterruptedOnly(cause)) return Effect.sync(() => (process.exitCode = 130))
    const failures = [...Cause.failures(cause)]
    // @effect/cli has already printed its own validation errors (unknown option, missing argument).
    const report = failures.length === 0
      ? Console.error(Cause.pretty(cause))
      : failures.every(ValidationError.isValidationError)
      ? Effect.void
      : Console.error(`error: ${failures.map((e) => (e instanceof Error ? e.message : String(e))).join("\n")}`)
    return Effect.zipRight(report, Effect.sync(() => (process.exitCode = 1)))
  }),
  Effect.provide(NodeContext.layer)
)

NodeRuntime.runMain(program, { disableErrorReporting: true })
