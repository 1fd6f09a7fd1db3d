// Bundles the CLI and the project's pipelines into one CommonJS file, dist/flame-pipe.cjs, with
// esbuild, and warms its V8 code cache (scripts/cached-bundle.cjs runs it). Loading one bundled file
// starts the CLI in a fraction of a second, where importing hundreds of ESM modules through a
// TypeScript loader takes seconds; with the code cache, the bundle is not even compiled. Modules stay
// lazy inside the bundle: each command's implementation, and each pipeline, is evaluated only when it
// is used (`plan` never evaluates the report, audit, gc or the Slurm executor) and compiled only then.
// The bundle is rebuilt whenever a source is newer than it.
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { loaderPath } from "./cached-bundle.cjs"
import { bundlePath, isStale, root, shardWorkerPath } from "./cli-bundle.cjs"
import { memoDir } from "./plan-memo.cjs"

export { bundlePath, isStale, shardWorkerPath }

export const pipelinesPlugin = {
  name: "flame-pipe-pipelines",
  setup(build) {
    build.onResolve({ filter: /^flame-pipe:pipelines$/ }, () => ({ path: "pipelines", namespace: "flame-pipe" }))
    build.onLoad({ filter: /.*/, namespace: "flame-pipe" }, () => {
      const dir = path.join(root, "pipelines")
      const names = fs.readdirSync(dir).filter((f) => f.endsWith(".ts")).map((f) => f.slice(0, -3)).sort()
      // Loaders, not modules: each pipeline (and the stages only it uses) becomes a chunk of its own.
      const entries = names.map((name) =>
        `${JSON.stringify(name)}: () => import(${JSON.stringify(path.join(dir, `${name}.ts`))}).then((m) => m.default)`
      )
      return {
        contents: `export default { ${entries.join(", ")} }\n`,
        resolveDir: dir,
        loader: "ts"
      }
    })
  }
}

/** The esbuild settings of the ES module bundles the project makes: the CLI's shard worker, Slurm job bundles. */
export const bundleOptions = {
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  // Native addons and the HF bindings (test oracle only) stay as ordinary imports.
  external: ["better-sqlite3", "tokenizers", "esbuild", "tsx", "vitest"],
  // Some dependencies are CommonJS and call require(); give the ESM bundle one.
  banner: {
    js:
      "import { createRequire as __flameRequire } from 'node:module'; const require = __flameRequire(import.meta.url);"
  },
  logLevel: "error",
  legalComments: "none"
}

/**
 * Bundles with `bundleOptions` plus `options` (an entry point or stdin, plugins) into `outfile`,
 * written under a temporary name and renamed: readers never see a half-written bundle.
 */
export const bundleAtomically = async (options, outfile) => {
  const esbuild = await import("esbuild")
  const tmp = `${outfile}.${process.pid}.tmp`
  fs.mkdirSync(path.dirname(outfile), { recursive: true })
  await esbuild.build({ ...bundleOptions, ...options, outfile: tmp })
  fs.renameSync(tmp, outfile)
  // Plan memos name the bundle they ran (scripts/plan-memo.cjs): none holds for the new one.
  fs.rmSync(memoDir(outfile), { recursive: true, force: true })
  return outfile
}

/**
 * The settings of a CommonJS bundle run by scripts/cached-bundle.cjs: the CLI and the bench CLI.
 * `import.meta.url` becomes the bundle's own URL (the code finds the project root from it), and the
 * bundle has no top-level await.
 */
export const scriptBundleOptions = {
  ...bundleOptions,
  format: "cjs",
  // Non-ASCII characters escaped, so that the loader may read the file as latin1, which is several
  // times quicker than decoding it as UTF-8.
  charset: "ascii",
  define: { "import.meta.url": "__flameBundleUrl" },
  banner: { js: "var __flameBundleUrl = require('node:url').pathToFileURL(__filename).href;" }
}

/**
 * Runs a short command with the bundle (`args`, e.g. a plan; given a scratch workspace and no GPUs) so
 * that its code cache is written with the code a command compiles (the CLI, the planner, the lineage
 * store), not only the top level. A failure costs nothing but the cache, which the first real command
 * writes.
 */
export const warmCodeCache = (bundle, args) => {
  const scratch = fs.mkdtempSync(path.join(path.dirname(bundle), ".warm-"))
  try {
    spawnSync(process.execPath, [loaderPath, bundle, ...args, "--workspace", scratch, "--gpus", "none"], {
      env: { ...process.env, FLAME_PIPE_PLAN_MEMO: "0" },
      stdio: "ignore",
      timeout: 60_000
    })
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true })
  }
}

// What the split ES module build of earlier versions left in dist/; nothing reads it any more.
const removeSplitBuild = () => {
  const dist = path.dirname(bundlePath)
  for (const file of fs.readdirSync(dist)) {
    if (/^flame-pipe(-chunk-\w+\.mjs|\.mjs|\.chunks\.json)$/.test(file)) {
      fs.rmSync(path.join(dist, file), { force: true })
    }
  }
}

export const buildCli = async () => {
  // The worker first: a CLI bundle never runs without the worker bundle it expects.
  await bundleAtomically({ entryPoints: [path.join(root, "src", "tokenize", "shardWorker.ts")] }, shardWorkerPath)
  await bundleAtomically(
    { ...scriptBundleOptions, entryPoints: [path.join(root, "src", "bin.bundled.ts")], plugins: [pipelinesPlugin] },
    bundlePath
  )
  removeSplitBuild()
  warmCodeCache(bundlePath, ["plan", "scaling-suite", "--preset", "tiny"])
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  await buildCli()
}
