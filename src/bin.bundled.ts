/**
 * Entry point of the bundled CLI (dist/flame-pipe.mjs): the project's pipelines are compiled in,
 * so starting the CLI loads one file instead of hundreds of modules.
 */
// @ts-expect-error: a virtual module made by scripts/build-cli.mjs, mapping pipeline names to modules.
import bundledPipelines from "flame-pipe:pipelines"
import { PipelineRegistry } from "./cli/PipelineRegistry.ts"
import { main } from "./main.ts"

main(PipelineRegistry.fromBundle(bundledPipelines as Record<string, unknown>))
