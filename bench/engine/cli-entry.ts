/**
 * Entry point of the bench CLI bundle: the real CLI (src/main.ts) with the benchmark's pipelines
 * compiled in, so its start-up and `plan`/`run` cost match the shipped dist/flame-pipe.mjs.
 */
import { PipelineRegistry } from "../../src/cli/PipelineRegistry.ts"
import { main } from "../../src/main.ts"
import bigfiles from "./bigfiles.ts"
import generated from "./generated.ts"

main(PipelineRegistry.fromBundle({ generated, bigfiles }))
