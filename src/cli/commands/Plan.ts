/**
 * `flame-pipe plan`: what a run would execute, and why.
 */
import { Command } from "@effect/cli"
import { gpus, json, pipelineOptions, workspace } from "../CommonOptions.ts"
import { lazyHandler } from "./lazy.ts"

const config = { ...pipelineOptions, workspace, json, gpus: gpus("GPUs to hand out to stages") }

export type PlanArgs = Command.Command.ParseConfig<typeof config>

export const planCommand = Command.make("plan", config, lazyHandler(() => import("./PlanHandler.ts"))).pipe(
  Command.withDescription(
    "what a run would execute, and why; for a Megatron stage, the command it would launch (placeholders for what only the run knows)"
  )
)
