// Runs a CommonJS bundle (dist/flame-pipe.cjs) with a V8 code cache beside it. Compiling the few MB of
// JavaScript a command loads (effect, @effect/cli, drizzle, the engine) is most of a short command's
// start; with the bytecode V8 serialised after an earlier run, that compile is skipped. Node 20 offers
// this only for scripts (vm.Script's cachedData), not for ES modules (module.enableCompileCache arrives
// in Node 22), hence the CommonJS bundle. The cache is tied to the bundle file (its size, mtime and
// inode, checked here: V8 itself only compares the source's length) and to the node binary (V8
// rejects a cache from another version or other flags); a missing or rejected cache is written anew
// when the process exits, under a temporary name and renamed.
//
//   node scripts/cached-bundle.cjs <bundle.cjs> [args...]    runs the bundle as if it were argv[1]
"use strict"
const fs = require("node:fs")
const Module = require("node:module")
const path = require("node:path")
const { memoizable, record, replay } = require("./plan-memo.cjs")

/** This loader, as a command: `node <loaderPath> <bundle.cjs> [args...]`. */
const loaderPath = __filename

/** Where the cache of `bundle` lives for this node: one file per node version and architecture. */
const cachePath = (bundle) => `${bundle}.${process.version}-${process.arch}.v8cache`

/** The bundle file's identity; every build replaces the file by a rename, which changes its inode. */
const identityOf = (stat) => `flame-pipe code cache ${stat.size} ${stat.mtimeMs} ${stat.ino}\n`

const readCache = (bundle, identity) => {
  let data
  try {
    data = fs.readFileSync(cachePath(bundle))
  } catch {
    return undefined
  }
  const header = Buffer.from(identity)
  return data.length > header.length && data.subarray(0, header.length).equals(header)
    ? data.subarray(header.length)
    : undefined
}

const writeCache = (bundle, identity, script) => {
  const file = cachePath(bundle)
  const tmp = `${file}.${process.pid}.tmp`
  try {
    fs.writeFileSync(tmp, Buffer.concat([Buffer.from(identity), script.createCachedData()]))
    fs.renameSync(tmp, file)
  } catch {
    // A read-only install, or a full disk: the next start compiles from source again, nothing worse.
    fs.rmSync(tmp, { force: true })
  }
}

// The bundle's own parameters, as Node's CommonJS wrapper has them, plus the `import()` a vm.Script
// lacks on Node 20 (src/importExternal.ts uses it).
const wrap = (source) => `(function (exports, require, module, __filename, __dirname, __flameImport) {${source}\n})`

/**
 * Compiles `bundle` with its code cache. `cache` says what became of the cache: "accepted",
 * "rejected" (V8 refused it: another node or other flags) or "absent" (none, or one of another build).
 */
const compileBundle = (bundle) => {
  const fd = fs.openSync(bundle, "r")
  let source, stat
  try {
    stat = fs.fstatSync(fd)
    // The build writes ASCII only (esbuild's charset "ascii"): latin1 decodes it unchanged, and quicker.
    source = fs.readFileSync(fd, "latin1")
  } finally {
    fs.closeSync(fd)
  }
  const identity = identityOf(stat)
  const cachedData = readCache(bundle, identity)
  // Required here: a plan answered from its memo never compiles anything.
  const vm = require("node:vm")
  const script = new vm.Script(wrap(source), { filename: bundle, ...(cachedData ? { cachedData } : {}) })
  const cache = cachedData === undefined ? "absent" : script.cachedDataRejected ? "rejected" : "accepted"
  return { script, cache, identity }
}

/**
 * Runs `bundle` in this process; without a usable cache, writes one as the process exits. A `plan` whose
 * recorded answer still holds is answered from scripts/plan-memo.cjs instead, without loading the bundle
 * ("memo"); one that runs is recorded.
 */
const runBundle = (bundle) => {
  const args = process.argv.slice(2)
  const memo = memoizable(args) ? replay(bundle, identityOf(fs.statSync(bundle)), args) : undefined
  if (memo?.replayed) return "memo"
  const { script, cache, identity } = compileBundle(bundle)
  const watch = memo === undefined ? undefined : record(bundle, memo.key)
  // At exit the functions this command compiled are in the cache too, not only the top level.
  if (cache !== "accepted") process.once("exit", () => writeCache(bundle, identity, script))
  const module = { exports: {} }
  script.runInThisContext().call(
    module.exports,
    module.exports,
    Module.createRequire(bundle),
    module,
    bundle,
    path.dirname(bundle),
    (specifier) => {
      watch?.refuse(`it imported ${specifier}`)
      return import(specifier)
    }
  )
  return cache
}

module.exports = { cachePath, compileBundle, loaderPath, runBundle }

if (require.main === module) {
  const bundle = process.argv[2]
  if (bundle === undefined) {
    process.stderr.write("usage: node scripts/cached-bundle.cjs <bundle.cjs> [args...]\n")
    process.exit(2)
  }
  const absolute = path.resolve(bundle)
  process.argv.splice(1, 2, absolute)
  runBundle(absolute)
}
