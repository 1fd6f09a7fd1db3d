/**
 * `flame-pipe status`: the state of a pipeline in a workspace.
 */
import { Command } from "@effect/cli"
import { gpus, pipelineOptions, workspace } from "../CommonOptions.ts"
import { lazyHandler } from "./lazy.ts"

const config = { ...pipelineOptions, workspace, gpus: gpus("GPUs to hand out to stages") }

export type StatusArgs = Command.Command.ParseConfig<typeof config>

export const statusCommand = Command.make("status", config, lazyHandler(() => import("./StatusHandler.ts"))).pipe(
  Command.withDescription("the state of a pipeline in a workspace")
)
