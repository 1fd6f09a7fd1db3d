/**
 * `flame-pipe lineage`: where an artifact came from (or, with --down, what came of it).
 */
import { Args, Command, Options } from "@effect/cli"
import { workspace } from "../CommonOptions.ts"
import { lazyHandler } from "./lazy.ts"

const config = {
  target: Args.text({ name: "target" }).pipe(
    Args.withDescription("a stage id, an execution id, or an artifact (id, content hash prefix or path)")
  ),
  workspace,
  down: Options.boolean("down").pipe(Options.withDescription("show what was derived from the target instead"))
}

export type LineageArgs = Command.Command.ParseConfig<typeof config>

export const lineageCommand = Command.make("lineage", config, lazyHandler(() => import("./LineageHandler.ts"))).pipe(
  Command.withDescription("where an artifact came from (or, with --down, what came of it)")
)
