#!/usr/bin/env node
// Starts the bundled CLI (dist/flame-pipe.cjs, with its V8 code cache), rebuilding it first when a
// source changed. A pipeline given as a module path runs from the TypeScript sources instead, so that
// module and the engine share one copy of every library. `--version` alone is answered here, before
// anything else loads.
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"

if (process.argv.length === 3 && process.argv[2] === "--version") {
  process.stdout.write(`${JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")).version}\n`)
} else {
  const modulePath = process.argv.slice(3).find((arg) => !arg.startsWith("-") && /\.(ts|mts|js|mjs)$/.test(arg))
  if (modulePath === undefined && process.env.FLAME_PIPE_FROM_SOURCES !== "1") {
    // CommonJS, required: the build (and esbuild) loads only when a source is newer than the bundle.
    const require = createRequire(import.meta.url)
    const { bundlePath, isStale } = require("../scripts/cli-bundle.cjs")
    if (isStale()) await (await import("../scripts/build-cli.mjs")).buildCli()
    require("../scripts/cached-bundle.cjs").runBundle(bundlePath)
  } else {
    const { register } = await import("tsx/esm/api")
    register()
    await import("../src/bin.ts")
  }
}
