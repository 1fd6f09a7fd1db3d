/**
 * Entry point of the bundled CLI (dist/flame-pipe.mjs): the project's pipelines are compiled in, each
 * in its own chunk loaded when named. The CLI itself is imported only past the `--version` fast path.
 */
// @ts-expect-error: a virtual module made by scripts/build-cli.mjs, mapping pipeline names to loaders.
import bundledPipelines from "flame-pipe:pipelines"
import { answeredVersion } from "./cli/Version.ts"
import type { BundledPipeline } from "./pipeline/Registry.ts"

if (!answeredVersion(process.argv)) {
  const [{ main }, { PipelineRegistry }] = await Promise.all([import("./main.ts"), import("./pipeline/Registry.ts")])
  main(PipelineRegistry.fromLoaders(bundledPipelines as Record<string, BundledPipeline>))
}
