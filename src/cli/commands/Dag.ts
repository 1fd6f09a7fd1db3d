/**
 * `flame-pipe dag`: the pipeline's DAG as Mermaid or Graphviz dot.
 */
import { Command, Options } from "@effect/cli"
import { gpus, pipelineOptions, withDefault } from "../CommonOptions.ts"
import { lazyHandler } from "./lazy.ts"

const config = {
  ...pipelineOptions,
  format: Options.choice("format", ["mermaid", "dot"]).pipe(withDefault("mermaid" as const)),
  gpus: gpus("GPUs of the executor the graph is settled for (no GPU is needed to print it)")
}

export type DagArgs = Command.Command.ParseConfig<typeof config>

export const dagCommand = Command.make("dag", config, lazyHandler(() => import("./DagHandler.ts"))).pipe(
  Command.withDescription(
    "print the pipeline's DAG as Mermaid or Graphviz dot; needs no GPUs (a preview: its data paths must exist)"
  )
)
