// Builds the native tokenizer addon (native/tokenizer/build/flame_tokenizer.node) with
// `make -C native/tokenizer`. Run by `npm install` (postinstall) and `npm run build:tokenizer`.
// Never fails the install: without the Node-API headers or a compiler, or on a compile error, it
// warns and the TypeScript encoder is used instead (same ids, a few times slower).
import { spawnSync } from "node:child_process"
import { existsSync, rmSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const dir = join(root, "native", "tokenizer")
const addon = join(dir, "build", "flame_tokenizer.node")

const warn = (message) => {
  // An addon left from an earlier build may not match the sources any more.
  rmSync(addon, { force: true })
  console.warn(`build-tokenizer: WARNING: ${message}`)
  console.warn("build-tokenizer: tokenization falls back to the TypeScript encoder (identical ids, slower)")
  process.exit(0)
}

if (process.env.FLAME_SKIP_TOKENIZER_BUILD === "1") {
  rmSync(addon, { force: true })
  console.warn("build-tokenizer: FLAME_SKIP_TOKENIZER_BUILD=1, not building the native tokenizer")
  process.exit(0)
}

// node_api.h ships with Node: under its install prefix, or the distribution's include dir.
const includeDir = () => {
  const candidates = [
    process.env.FLAME_NODE_INCLUDE,
    join(process.config.variables.node_prefix ?? "", "include", "node"),
    join(dirname(process.execPath), "..", "include", "node"),
    "/usr/include/node",
    "/usr/local/include/node",
    join(process.env.HOME ?? "", ".cache", "node-gyp", process.versions.node, "include", "node")
  ]
  return candidates.find((d) => d !== undefined && d !== "" && existsSync(join(d, "node_api.h")))
}

const include = includeDir()
if (include === undefined) {
  warn("node_api.h not found (set FLAME_NODE_INCLUDE to the directory holding it)")
}
const make = process.env.MAKE ?? "make"
const result = spawnSync(make, ["-C", dir, "-j2", `NODE_INCLUDE=${include}`], { stdio: "inherit" })
if (result.error !== undefined) warn(`could not run ${make}: ${result.error.message} (need make and g++ >= 9)`)
if (result.status !== 0) warn(`make -C native/tokenizer failed with exit code ${result.status ?? result.signal}`)
try {
  const exports = createRequire(import.meta.url)(addon)
  if (typeof exports.createEncoder !== "function") throw new Error("createEncoder is missing")
} catch (e) {
  warn(`${addon} was built but does not load: ${e.message}`)
}
console.log(`build-tokenizer: built ${addon}`)
