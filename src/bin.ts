/**
 * Entry point when running from TypeScript sources: pipelines are imported from their files.
 */
import { PipelineRegistry } from "./cli/PipelineRegistry.ts"
import { main } from "./main.ts"

main(PipelineRegistry.fromFiles)
