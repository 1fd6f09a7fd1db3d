import { Console, Effect } from "effect"
import { lineageTree } from "../LineageView.ts"
import { lineageLayer } from "../Services.ts"
import type { LineageArgs } from "./Lineage.ts"

export const handler = (args: LineageArgs) =>
  Effect.gen(function*() {
    const lines = yield* lineageTree(args.target, args.down ? "down" : "up").pipe(
      Effect.provide(lineageLayer(args.workspace))
    )
    yield* Console.log(lines.join("\n"))
  })
