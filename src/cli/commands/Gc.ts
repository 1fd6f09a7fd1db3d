/**
 * `flame-pipe gc`, `pin` and `unpin`: what the workspace keeps.
 */
import { Args, Command, Options } from "@effect/cli"
import { json, workspace } from "../CommonOptions.ts"
import { lazyHandler } from "./lazy.ts"

const target = Args.text({ name: "target" }).pipe(
  Args.withDescription("a stage id (its latest succeeded execution), an execution id, or an artifact (id, hash, path)")
)

const gcConfig = {
  workspace,
  json,
  yes: Options.boolean("yes").pipe(Options.withDescription("delete; without it, only list what would be freed")),
  wait: Options.boolean("wait").pipe(Options.withDescription("with --yes: wait for a run to finish"))
}
export type GcArgs = Command.Command.ParseConfig<typeof gcConfig>

const pinConfig = {
  target: target.pipe(Args.optional),
  workspace,
  json,
  note: Options.text("note").pipe(Options.optional, Options.withDescription("why it is kept"))
}
export type PinArgs = Command.Command.ParseConfig<typeof pinConfig>

const unpinConfig = { target: target.pipe(Args.withDescription("as for pin, or a pin id")), workspace }
export type UnpinArgs = Command.Command.ParseConfig<typeof unpinConfig>

export const gcCommand = Command.make(
  "gc",
  gcConfig,
  lazyHandler(() => import("./GcHandler.ts").then((m) => ({ handler: m.gc })))
).pipe(
  Command.withDescription(
    "free what no latest successful run, pin or running execution needs (dry run unless --yes); lineage stays"
  )
)

export const pinCommand = Command.make(
  "pin",
  pinConfig,
  lazyHandler(() => import("./GcHandler.ts").then((m) => ({ handler: m.pin })))
).pipe(Command.withDescription("keep a result and everything it came from out of gc; without a target, list pins"))

export const unpinCommand = Command.make(
  "unpin",
  unpinConfig,
  lazyHandler(() => import("./GcHandler.ts").then((m) => ({ handler: m.unpin })))
).pipe(Command.withDescription("let gc collect a pinned target again"))
