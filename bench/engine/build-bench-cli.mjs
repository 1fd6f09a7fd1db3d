// Bundles the CLI with the benchmark's pipelines into bench/out/engine/flame-pipe-bench.mjs, with
// the same esbuild settings as scripts/build-cli.mjs (whose buildCli takes no entry or output), so
// the measured start-up is that of the shipped bundle. The output must stay inside the project:
// the bundle finds the project root (and the lineage migrations) from its own location.
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../..", import.meta.url))
export const benchBundlePath = path.join(root, "bench", "out", "engine", "flame-pipe-bench.mjs")

export const buildBenchCli = async () => {
  const esbuild = await import("esbuild")
  const tmp = `${benchBundlePath}.${process.pid}.tmp`
  fs.mkdirSync(path.dirname(benchBundlePath), { recursive: true })
  await esbuild.build({
    entryPoints: [path.join(root, "bench", "engine", "cli-entry.ts")],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outfile: tmp,
    external: ["better-sqlite3", "tokenizers", "esbuild", "tsx", "vitest"],
    banner: {
      js:
        "import { createRequire as __flameRequire } from 'node:module'; const require = __flameRequire(import.meta.url);"
    },
    logLevel: "error",
    legalComments: "none"
  })
  fs.renameSync(tmp, benchBundlePath)
  return benchBundlePath
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  console.log(await buildBenchCli())
}
