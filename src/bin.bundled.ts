/**
 * Entry point of the bundled CLI (dist/flame-pipe.cjs, run by scripts/cached-bundle.cjs): the
 * project's pipelines are compiled in, each evaluated only when named. The CLI itself is evaluated
 * only past the `--version` fast path.
 */
// @ts-expect-error: a virtual module made by scripts/build-cli.mjs, mapping pipeline names to loaders.
import bundledPipelines from "flame-pipe:pipelines"
import { answeredVersion } from "./cli/Version.ts"
import type { BundledPipeline } from "./pipeline/Registry.ts"

// No top-level await: the bundle is a CommonJS script.
if (!answeredVersion(process.argv)) {
  void Promise.all([import("./main.ts"), import("./pipeline/Registry.ts")]).then(([{ main }, { PipelineRegistry }]) =>
    main(PipelineRegistry.fromLoaders(bundledPipelines as Record<string, BundledPipeline>))
  )
}
