// Bundles the CLI with the benchmark's pipelines into bench/out/engine/flame-pipe-bench.cjs and warms
// its V8 code cache, with the same esbuild settings and the same layout as scripts/build-cli.mjs, so
// the measured start-up is that of the shipped bundle; scripts/cached-bundle.cjs runs it, as
// bin/flame-pipe.js runs the shipped one. The output must stay inside the project: the bundle finds the
// project root (and the lineage migrations) from its own location.
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { bundleAtomically, scriptBundleOptions, warmCodeCache } from "../../scripts/build-cli.mjs"

const root = fileURLToPath(new URL("../..", import.meta.url))
export const benchBundlePath = path.join(root, "bench", "out", "engine", "flame-pipe-bench.cjs")

export const buildBenchCli = async () => {
  await bundleAtomically(
    { ...scriptBundleOptions, entryPoints: [path.join(root, "bench", "engine", "cli-entry.ts")] },
    benchBundlePath
  )
  warmCodeCache(benchBundlePath, ["plan", "generated", "--preset", "1k"])
  return benchBundlePath
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  console.log(await buildBenchCli())
}
