"use strict"
// Where the CLI bundle lives, and whether a source is newer than it. Apart from the build script, and
// CommonJS, so that bin/flame-pipe.js checks this on every start without loading the build (or esbuild)
// or Node's ES module loader for it.
const fs = require("node:fs")
const path = require("node:path")

const root = path.join(__dirname, "..")
const bundlePath = path.join(root, "dist", "flame-pipe.cjs")
/** The tokenizer's worker-thread entry, bundled beside the CLI (src/tokenize/parallel.ts looks for it there). */
const shardWorkerPath = path.join(root, "dist", "shard-worker.mjs")
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

/** Whether the bundle (or the worker bundle it expects) is missing or older than a source. */
const isStale = () => {
  try {
    return Math.min(fs.statSync(bundlePath).mtimeMs, fs.statSync(shardWorkerPath).mtimeMs) < newestSource()
  } catch {
    return true
  }
}

module.exports = { bundlePath, isStale, root, shardWorkerPath }
