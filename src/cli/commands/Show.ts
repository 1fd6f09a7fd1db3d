/**
 * `flame-pipe show`: details of one execution.
 */
import { Args, Command } from "@effect/cli"
import { json, workspace } from "../CommonOptions.ts"
import { lazyHandler } from "./lazy.ts"

const config = {
  execution: Args.text({ name: "execution" }).pipe(Args.withDescription("an execution id (or prefix), or a stage id")),
  workspace,
  json
}

export type ShowArgs = Command.Command.ParseConfig<typeof config>

export const showCommand = Command.make("show", config, lazyHandler(() => import("./ShowHandler.ts"))).pipe(
  Command.withDescription("details of one execution: params, inputs, outputs, metrics, environment")
)
