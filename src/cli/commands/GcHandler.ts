import { Console, Effect, Option } from "effect"
import { formatGc, formatPins } from "../../gc/format.ts"
import { gc as collect } from "../../gc/Gc.ts"
import { listPins, pin as addPin, unpin as removePin } from "../../gc/Pins.ts"
import { lineageLayer } from "../Services.ts"
import type { GcArgs, PinArgs, UnpinArgs } from "./Gc.ts"

export const gc = (args: GcArgs) =>
  Effect.gen(function*() {
    const plan = yield* collect({ yes: args.yes, wait: args.wait }).pipe(Effect.provide(lineageLayer(args.workspace)))
    yield* Console.log(args.json ? JSON.stringify(plan, null, 2) : formatGc(plan))
  })

export const pin = (args: PinArgs) =>
  Effect.gen(function*() {
    if (Option.isNone(args.target)) {
      const pins = yield* listPins
      return yield* Console.log(args.json ? JSON.stringify(pins, null, 2) : formatPins(pins))
    }
    const { created, pin: row } = yield* addPin(args.target.value, Option.getOrUndefined(args.note))
    yield* Console.log(
      args.json
        ? JSON.stringify({ created, pin: row }, null, 2)
        : created
        ? `pinned ${args.target.value} (pin ${row.id.slice(0, 8)}): gc keeps it and what it came from`
        : `already pinned (pin ${row.id.slice(0, 8)})`
    )
  }).pipe(Effect.provide(lineageLayer(args.workspace)))

export const unpin = (args: UnpinArgs) =>
  Effect.gen(function*() {
    const removed = yield* removePin(args.target)
    yield* Console.log(`removed ${removed} pin(s)`)
  }).pipe(Effect.provide(lineageLayer(args.workspace)))
