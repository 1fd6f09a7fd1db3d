/**
 * `flame-pipe gc`, `pin` and `unpin`.
 */
import { Args, Command, Options } from "@effect/cli"
import { Console, Effect, Layer, Option } from "effect"
import { formatGc, formatPins } from "../gc/format.ts"
import { gc } from "../gc/Gc.ts"
import { listPins, pin, unpin } from "../gc/Pins.ts"
import { Lineage } from "../lineage/Lineage.ts"
import { Workspace } from "../workspace/Workspace.ts"
import { json, workspace } from "./CommonOptions.ts"

const lineageLayer = (dir: string) => Layer.provideMerge(Lineage.Default, Workspace.layer(dir))
const target = Args.text({ name: "target" }).pipe(
  Args.withDescription("a stage id (its latest succeeded execution), an execution id, or an artifact (id, hash, path)")
)

export const gcCommand = Command.make(
  "gc",
  {
    workspace,
    json,
    yes: Options.boolean("yes").pipe(Options.withDescription("delete; without it, only list what would be freed")),
    wait: Options.boolean("wait").pipe(Options.withDescription("with --yes: wait for a run to finish"))
  },
  (args) =>
    Effect.gen(function*() {
      const plan = yield* gc({ yes: args.yes, wait: args.wait }).pipe(Effect.provide(lineageLayer(args.workspace)))
      yield* Console.log(args.json ? JSON.stringify(plan, null, 2) : formatGc(plan))
    })
).pipe(
  Command.withDescription(
    "free what no latest successful run, pin or running execution needs (dry run unless --yes); lineage stays"
  )
)

export const pinCommand = Command.make(
  "pin",
  {
    target: target.pipe(Args.optional),
    workspace,
    json,
    note: Options.text("note").pipe(Options.optional, Options.withDescription("why it is kept"))
  },
  (args) =>
    Effect.gen(function*() {
      if (Option.isNone(args.target)) {
        const pins = yield* listPins
        return yield* Console.log(args.json ? JSON.stringify(pins, null, 2) : formatPins(pins))
      }
      const { created, pin: row } = yield* pin(args.target.value, Option.getOrUndefined(args.note))
      yield* Console.log(
        args.json
          ? JSON.stringify({ created, pin: row }, null, 2)
          : created
          ? `pinned ${args.target.value} (pin ${row.id.slice(0, 8)}): gc keeps it and what it came from`
          : `already pinned (pin ${row.id.slice(0, 8)})`
      )
    }).pipe(Effect.provide(lineageLayer(args.workspace)))
).pipe(Command.withDescription("keep a result and everything it came from out of gc; without a target, list pins"))

export const unpinCommand = Command.make(
  "unpin",
  { target: target.pipe(Args.withDescription("as for pin, or a pin id")), workspace },
  (args) =>
    Effect.gen(function*() {
      const removed = yield* unpin(args.target)
      yield* Console.log(`removed ${removed} pin(s)`)
    }).pipe(Effect.provide(lineageLayer(args.workspace)))
).pipe(Command.withDescription("let gc collect a pinned target again"))
