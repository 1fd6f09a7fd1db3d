/**
 * A pipeline given as a module path is imported from TypeScript sources, which takes a node start
 * several seconds (a loader compiling hundreds of modules). Its batch jobs would pay that each; so
 * before submitting, the engine bundles the CLI with that module, as the shipped CLI bundles
 * pipelines/, and jobs load one file. The bundle lives under dist/ in the project: it finds the
 * project root (and the lineage migrations) from its own location. Like the CLI bundle, it has the
 * tokenizer's worker-thread entry beside it (src/tokenize/parallel.ts looks for it there).
 */
import { Effect } from "effect"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import type * as BuildScript from "../../../scripts/build-cli.mjs"
import { StageFailed } from "../../domain/Errors.ts"
import { importExternal } from "../../importExternal.ts"
import { fromRoot } from "../../ProjectRoot.ts"
import { sha256Text } from "../../store/ContentHasher.ts"

export const jobBundlePath = (modulePath: string): string =>
  fromRoot("dist", "jobs", sha256Text(path.resolve(modulePath)).slice(0, 16), "flame-pipe-job.mjs")

/**
 * The project's bundler (scripts/build-cli.mjs), loaded by path at run time: a static import would put
 * the build script, and its run-when-executed entry, inside the CLI bundle itself.
 */
const bundler = (): Promise<typeof BuildScript> =>
  importExternal<typeof BuildScript>(pathToFileURL(fromRoot("scripts", "build-cli.mjs")).href)

/** Bundles `flame-pipe job` with the pipeline module; returns the bundle's path. */
export const buildJobBundle = (modulePath: string): Effect.Effect<string, StageFailed> =>
  Effect.tryPromise({
    try: async () => {
      const { bundleAtomically } = await bundler()
      const module = path.resolve(modulePath)
      const outfile = jobBundlePath(module)
      // Each is written under a temporary name and renamed: a job of an earlier run starting right now
      // never reads a half-written bundle.
      await bundleAtomically(
        { entryPoints: [fromRoot("src", "tokenize", "shardWorker.ts")] },
        path.join(path.dirname(outfile), "shard-worker.mjs")
      )
      const entry = [
        `import { PipelineRegistry } from ${JSON.stringify(fromRoot("src", "pipeline", "Registry.ts"))}`,
        `import { main } from ${JSON.stringify(fromRoot("src", "main.ts"))}`,
        `import pipeline from ${JSON.stringify(module)}`,
        `main(PipelineRegistry.fromBundle({ [${JSON.stringify(module)}]: pipeline }))`
      ].join("\n")
      await bundleAtomically(
        { stdin: { contents: entry, resolveDir: path.dirname(module), loader: "ts", sourcefile: "job-entry.ts" } },
        outfile
      )
      return outfile
    },
    catch: (cause) =>
      new StageFailed({ stage: "(slurm)", reason: `cannot bundle ${modulePath} for the batch jobs: ${String(cause)}` })
  })
