// Bundles the CLI with the benchmark's pipelines into bench/out/engine/flame-pipe-bench.mjs (and the
// chunks it loads on demand, beside it) with the same esbuild settings and the same split layout as
// scripts/build-cli.mjs (bundleSplitAtomically), so the measured start-up is that of the shipped
// bundle. The output must stay inside the project: the bundle finds the project root (and the lineage
// migrations) from its own location.
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { bundleSplitAtomically } from "../../scripts/build-cli.mjs"

const root = fileURLToPath(new URL("../..", import.meta.url))
export const benchBundlePath = path.join(root, "bench", "out", "engine", "flame-pipe-bench.mjs")

export const buildBenchCli = () =>
  bundleSplitAtomically({ entryPoints: [path.join(root, "bench", "engine", "cli-entry.ts")] }, benchBundlePath)

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  console.log(await buildBenchCli())
}
