/**
 * A command's implementation is imported when that command runs, not when the CLI starts: `--help`
 * and `plan` do not load the report's charting library, audit, gc or the Slurm executor. Each command
 * module holds only its descriptor (arguments, options, help); its handler module does the work.
 */
import { Effect } from "effect"

export const lazyHandler = <A, E, R>(
  load: () => Promise<{ readonly handler: (args: A) => Effect.Effect<void, E, R> }>
) =>
(args: A): Effect.Effect<void, E, R> => Effect.flatMap(Effect.promise(load), (module) => module.handler(args))
