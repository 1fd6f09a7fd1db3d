/**
 * A pipeline given as a module path is imported from TypeScript sources, which takes a node start
 * several seconds (a loader compiling hundreds of modules). Its batch jobs would pay that each; so
 * before submitting, the engine bundles the CLI with that module, as the shipped CLI bundles
 * pipelines/, and jobs load one file. The bundle lives under dist/ in the project: it finds the
 * project root (and the lineage migrations) from its own location. Like the CLI bundle, it has the
 * tokenizer's worker-thread entry beside it (src/tokenize/parallel.ts looks for it there).
 */
import { Effect } from "effect"
import type { BuildOptions } from "esbuild"
import * as fs from "node:fs"
import * as path from "node:path"
import { StageFailed } from "../domain/Errors.ts"
import { fromRoot } from "../ProjectRoot.ts"
import { sha256Text } from "../store/ContentHasher.ts"

export const jobBundlePath = (modulePath: string): string =>
  fromRoot("dist", "jobs", sha256Text(path.resolve(modulePath)).slice(0, 16), "flame-pipe-job.mjs")

const bundleOptions: BuildOptions = {
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  // The same settings as the CLI bundle (scripts/build-cli.mjs).
  external: ["better-sqlite3", "tokenizers", "esbuild", "tsx", "vitest"],
  banner: {
    js:
      "import { createRequire as __flameRequire } from 'node:module'; const require = __flameRequire(import.meta.url);"
  },
  logLevel: "error",
  legalComments: "none"
}

/** Bundles `flame-pipe job` with the pipeline module; returns the bundle's path. */
export const buildJobBundle = (modulePath: string): Effect.Effect<string, StageFailed> =>
  Effect.tryPromise({
    try: async () => {
      const esbuild = await import("esbuild")
      const module = path.resolve(modulePath)
      const outfile = jobBundlePath(module)
      fs.mkdirSync(path.dirname(outfile), { recursive: true })
      // Written under temporary names and renamed: a job of an earlier run starting right now never
      // reads a half-written bundle.
      const worker = path.join(path.dirname(outfile), "shard-worker.mjs")
      await esbuild.build({
        ...bundleOptions,
        entryPoints: [fromRoot("src", "tokenize", "shardWorker.ts")],
        outfile: `${worker}.${process.pid}.tmp`
      })
      fs.renameSync(`${worker}.${process.pid}.tmp`, worker)
      const entry = [
        `import { PipelineRegistry } from ${JSON.stringify(fromRoot("src", "cli", "PipelineRegistry.ts"))}`,
        `import { main } from ${JSON.stringify(fromRoot("src", "main.ts"))}`,
        `import pipeline from ${JSON.stringify(module)}`,
        `main(PipelineRegistry.fromBundle({ [${JSON.stringify(module)}]: pipeline }))`
      ].join("\n")
      await esbuild.build({
        ...bundleOptions,
        stdin: { contents: entry, resolveDir: path.dirname(module), loader: "ts", sourcefile: "job-entry.ts" },
        outfile: `${outfile}.${process.pid}.tmp`
      })
      fs.renameSync(`${outfile}.${process.pid}.tmp`, outfile)
      return outfile
    },
    catch: (cause) =>
      new StageFailed({ stage: "(slurm)", reason: `cannot bundle ${modulePath} for the batch jobs: ${String(cause)}` })
  })
