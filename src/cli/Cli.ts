/**
 * The command line: the commands' descriptors, and the parser that dispatches to them. Each command's
 * implementation is imported when it runs (see commands/lazy.ts), so starting the CLI loads only
 * @effect/cli and these descriptors.
 */
import { Command, CommandDescriptor } from "@effect/cli"
import { Console, HashSet } from "effect"
import { auditCommand } from "./commands/Audit.ts"
import { dagCommand } from "./commands/Dag.ts"
import { gcCommand, pinCommand, unpinCommand } from "./commands/Gc.ts"
import { jobCommand } from "./commands/Job.ts"
import { lineageCommand } from "./commands/Lineage.ts"
import { planCommand } from "./commands/Plan.ts"
import { reportCommand } from "./commands/Report.ts"
import { runCommand } from "./commands/Run.ts"
import { showCommand } from "./commands/Show.ts"
import { statusCommand } from "./commands/Status.ts"
import { helpText } from "./Help.ts"
import { packageVersion } from "./Version.ts"

const subcommands = [
  runCommand,
  planCommand,
  statusCommand,
  lineageCommand,
  dagCommand,
  showCommand,
  jobCommand,
  auditCommand,
  gcCommand,
  pinCommand,
  unpinCommand,
  reportCommand
] as const

export const command = Command.make("flame-pipe").pipe(
  Command.withDescription("FLAME-MoE's lifecycle as a typed, cached DAG"),
  Command.withSubcommands(subcommands)
)

export const version = packageVersion()

const descriptors: ReadonlyArray<CommandDescriptor.Command<unknown>> = subcommands.map((sub) => sub.descriptor)

const run = Command.run(command, { name: "flame-pipe", version })

/**
 * `-h`/`--help` before any `--`: the help of the command named first (or of the CLI), rendered by
 * Help.ts; undefined when no help was asked for.
 */
export const requestedHelp = (argv: ReadonlyArray<string>): string | undefined => {
  const args = argv.slice(2)
  const end = args.indexOf("--")
  const head = end < 0 ? args : args.slice(0, end)
  if (!head.includes("--help") && !head.includes("-h")) return undefined
  const named = descriptors.find((sub) =>
    head[0] !== undefined && HashSet.has(CommandDescriptor.getNames(sub), head[0])
  )
  return helpText("flame-pipe", version, named ?? command.descriptor)
}

export const cli = (argv: ReadonlyArray<string>) => {
  const help = requestedHelp(argv)
  return help === undefined ? run(argv) : Console.log(help)
}
