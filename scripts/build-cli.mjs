// Bundles the CLI and the project's pipelines into dist/flame-pipe.mjs with esbuild, split into
// chunks beside it: the entry and the command descriptors load at start, and each command's
// implementation, and each pipeline, when it is used (`plan` never loads the report's charting library,
// audit, gc or the Slurm executor). Loading a few bundled files starts the CLI in a fraction of a
// second, where importing hundreds of ESM modules through a TypeScript loader takes seconds. The
// bundle is rebuilt whenever a source is newer than it.
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("..", import.meta.url))
export const bundlePath = path.join(root, "dist", "flame-pipe.mjs")
const sourceDirs = ["src", "stages", "pipelines"].map((d) => path.join(root, d))
const sourceFiles = [path.join(root, "package.json"), path.join(root, "scripts", "build-cli.mjs")]

const newestSource = () => {
  let newest = 0
  const visit = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name)
      if (entry.isDirectory()) visit(p)
      else if (/\.(ts|mts|js|mjs|json)$/.test(entry.name)) newest = Math.max(newest, fs.statSync(p).mtimeMs)
    }
  }
  for (const dir of sourceDirs) if (fs.existsSync(dir)) visit(dir)
  for (const file of sourceFiles) newest = Math.max(newest, fs.statSync(file).mtimeMs)
  return newest
}

export const isStale = () => {
  try {
    return Math.min(fs.statSync(bundlePath).mtimeMs, fs.statSync(shardWorkerPath).mtimeMs) < newestSource()
  } catch {
    return true
  }
}

const pipelinesPlugin = {
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

/** The tokenizer's worker-thread entry, bundled beside the CLI (src/tokenize/parallel.ts looks for it there). */
export const shardWorkerPath = path.join(root, "dist", "shard-worker.mjs")

/** The esbuild settings of every bundle the project makes: the CLI, its shard worker, Slurm job bundles, the bench CLI. */
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
  return outfile
}

/**
 * Bundles `options` (one entry point, plugins) into `outfile` and the chunks it loads on demand, beside
 * it and named `<entry name>-chunk-<content hash>.mjs`. Everything is written in a temporary directory
 * first; the chunks are moved in, then the entry last, so a starting CLI never finds a half-written
 * bundle or an entry whose chunks are missing. A CLI of the build before keeps its chunks: only
 * chunks neither this build nor the one before it wrote are deleted.
 */
export const bundleSplitAtomically = async (options, outfile) => {
  const esbuild = await import("esbuild")
  const dir = path.dirname(outfile)
  const entry = path.basename(outfile)
  const name = entry.replace(/\.mjs$/, "")
  const tmp = path.join(dir, `.${name}.${process.pid}.tmp`)
  const manifestPath = path.join(dir, `${name}.chunks.json`)
  fs.rmSync(tmp, { recursive: true, force: true })
  fs.mkdirSync(tmp, { recursive: true })
  try {
    await esbuild.build({
      ...bundleOptions,
      ...options,
      entryPoints: { [name]: options.entryPoints[0] },
      splitting: true,
      outdir: tmp,
      entryNames: "[name]",
      chunkNames: `${name}-chunk-[hash]`,
      outExtension: { ".js": ".mjs" }
    })
    const chunks = fs.readdirSync(tmp).filter((f) => f !== entry)
    for (const chunk of chunks) fs.renameSync(path.join(tmp, chunk), path.join(dir, chunk))
    fs.renameSync(path.join(tmp, entry), outfile)
    let previous = []
    try {
      previous = JSON.parse(fs.readFileSync(manifestPath, "utf8")).chunks
    } catch {
      // No earlier split build here.
    }
    const manifestTmp = `${manifestPath}.${process.pid}.tmp`
    fs.writeFileSync(manifestTmp, JSON.stringify({ chunks }))
    fs.renameSync(manifestTmp, manifestPath)
    const keep = new Set([...chunks, ...previous])
    for (const file of fs.readdirSync(dir)) {
      const ours = file.startsWith(`${name}-chunk-`) && file.endsWith(".mjs")
      if (ours && !keep.has(file)) fs.rmSync(path.join(dir, file), { force: true })
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
  return outfile
}

export const buildCli = async () => {
  // The worker first: a CLI bundle never runs without the worker bundle it expects.
  await bundleAtomically({ entryPoints: [path.join(root, "src", "tokenize", "shardWorker.ts")] }, shardWorkerPath)
  await bundleSplitAtomically(
    { entryPoints: [path.join(root, "src", "bin.bundled.ts")], plugins: [pipelinesPlugin] },
    bundlePath
  )
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  await buildCli()
}
