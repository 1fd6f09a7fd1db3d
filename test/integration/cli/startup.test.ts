/**
 * The CLI's start-up: `--version` answers before the CLI loads; the bundle runs with its V8 code cache,
 * which a build warms, a rebuild invalidates and a damaged file cannot break; and a command evaluates
 * only its own implementation (`plan` never the report, audit, gc or the Slurm executor).
 */
import type { Plugin } from "esbuild"
import { execa } from "execa"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  buildCli,
  bundleAtomically,
  bundlePath,
  pipelinesPlugin,
  scriptBundleOptions
} from "../../../scripts/build-cli.mjs"
import { cachePath, loaderPath as loader } from "../../../scripts/cached-bundle.cjs"
import { bin, root, tempWorkspace } from "../../support/cli.ts"

const version = (JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as { version: string }).version

// A copy of the CLI bundle, built with the same settings, in which every source module records that it
// was evaluated; it lives under dist/ because a bundle finds the project root from its own location.
const traceDir = path.join(root, "dist", `.startup-trace-${process.pid}`)
const tracedBundle = path.join(traceDir, "flame-pipe.cjs")
const recordEvaluation: Plugin = {
  name: "record-evaluation",
  setup(build) {
    build.onLoad({ filter: /\/(src|stages|pipelines)\/.*\.ts$/ }, ({ path: file }) => ({
      contents: `${fs.readFileSync(file, "utf8")}\n;(globalThis.__flameEvaluated ??= []).push(${
        JSON.stringify(path.relative(root, file))
      });\n`,
      loader: "ts"
    }))
  }
}

/**
 * What a fresh node makes of `bundle`'s code cache. A fresh process, because V8 keeps the scripts it
 * compiled in memory and would answer from there for a source this process has compiled already.
 */
const cacheOf = async (bundle: string) =>
  JSON.parse(
    (await execa("node", [
      "--input-type=module",
      "-e",
      `const { compileBundle } = await import(${JSON.stringify(loader)}); ` +
      `const { cache, identity } = compileBundle(${JSON.stringify(bundle)}); ` +
      `console.log(JSON.stringify({ cache, identity }))`
    ])).stdout
  ) as { cache: string; identity: string }

/** The source modules a command evaluated, through the traced bundle. */
const evaluatedModules = async (args: ReadonlyArray<string>) => {
  const trace = path.join(traceDir, `evaluated-${Math.random().toString(36).slice(2)}.json`)
  const result = await execa("node", [loader, tracedBundle, ...args], {
    cwd: root,
    reject: false,
    env: { FLAME_TRACE: trace }
  })
  const modules = fs.existsSync(trace) ? JSON.parse(fs.readFileSync(trace, "utf8")) as Array<string> : []
  return { result, modules: new Set(modules) }
}

describe("start-up", () => {
  beforeAll(async () => {
    await buildCli()
    await bundleAtomically({
      ...scriptBundleOptions,
      entryPoints: [path.join(root, "src", "bin.bundled.ts")],
      plugins: [recordEvaluation, pipelinesPlugin],
      banner: {
        js: `${scriptBundleOptions.banner.js} process.on("exit", () => { if (process.env.FLAME_TRACE) ` +
          `require("node:fs").writeFileSync(process.env.FLAME_TRACE, JSON.stringify(globalThis.__flameEvaluated ?? [])) });`
      }
    }, tracedBundle)
  }, 120_000)
  afterAll(() => fs.rmSync(traceDir, { recursive: true, force: true }))

  it("--version prints the package's version, from bin/ and from the bundle", async () => {
    expect((await execa("node", [bin, "--version"])).stdout).toBe(version)
    expect((await execa("node", [loader, bundlePath, "--version"])).stdout).toBe(version)
  })

  it("the bundle is ASCII, as the loader's latin1 read needs; non-ASCII text survives as escapes", async () => {
    const source = fs.readFileSync(bundlePath, "latin1")
    expect([...source].every((c) => c.charCodeAt(0) < 0x80)).toBe(true)
    // The lineage tree's box-drawing characters are written as \u escapes and print as themselves.
    expect(source).toContain("\\u2514\\u2500")
    const ws = tempWorkspace()
    const cli = (args: ReadonlyArray<string>) => execa("node", [loader, bundlePath, ...args], { cwd: root })
    await cli(["run", "toy", "--workspace", ws, "--gpus", "none"])
    expect((await cli(["lineage", "report", "--workspace", ws])).stdout).toContain("\u2514\u2500 ")
  })

  it("a build leaves a code cache that V8 accepts; a rebuilt bundle does not use the old one", async () => {
    expect(fs.existsSync(cachePath(bundlePath))).toBe(true)
    expect((await cacheOf(bundlePath)).cache).toBe("accepted")
    // Same bytes, new file (as every build writes it): the cache names the file it was made for.
    const copy = path.join(traceDir, "copy.cjs")
    fs.copyFileSync(bundlePath, copy)
    fs.copyFileSync(cachePath(bundlePath), cachePath(copy))
    expect((await cacheOf(copy)).cache).toBe("absent")
  })

  it("a damaged cache is rejected by V8, the command still runs, and a good cache replaces it", async () => {
    const copy = path.join(traceDir, "damaged.cjs")
    fs.copyFileSync(bundlePath, copy)
    const fresh = await cacheOf(copy)
    expect(fresh.cache).toBe("absent")
    // The right header (this file's identity) over bytes that are not V8's.
    fs.writeFileSync(cachePath(copy), Buffer.concat([Buffer.from(fresh.identity), Buffer.alloc(4096, 7)]))
    expect((await cacheOf(copy)).cache).toBe("rejected")
    const ws = tempWorkspace()
    const result = await execa("node", [loader, copy, "plan", "toy", "--workspace", ws, "--gpus", "none"], {
      cwd: root,
      reject: false
    })
    expect(result.exitCode, result.stderr).toBe(0)
    expect(result.stdout).toContain("stages would run")
    expect((await cacheOf(copy)).cache).toBe("accepted")
  })

  it("plan evaluates neither the report, audit, gc nor the Slurm executor; gc evaluates gc", async () => {
    const ws = tempWorkspace()
    const plan = await evaluatedModules(["plan", "toy", "--workspace", ws, "--gpus", "none"])
    expect(plan.result.exitCode, plan.result.stderr).toBe(0)
    expect(plan.result.stdout).toContain("stages would run")
    expect([...plan.modules].some((m) => m.startsWith("src/engine/Planner"))).toBe(true)
    const unwanted = /^src\/(audit|gc|report)\/|^src\/slurm\/SlurmExecutor/
    expect([...plan.modules].filter((m) => unwanted.test(m))).toEqual([])
    // The trace sees a command's own modules when it does load them.
    const gc = await evaluatedModules(["gc", "--workspace", ws])
    expect(gc.result.exitCode, gc.result.stderr).toBe(0)
    expect([...gc.modules].some((m) => m.startsWith("src/gc/"))).toBe(true)
  })

  it("report evaluates the report's code only when it runs", async () => {
    const { modules, result } = await evaluatedModules(["report", "--help"])
    expect(result.exitCode, result.stderr).toBe(0)
    expect(modules.size).toBeGreaterThan(0)
    expect([...modules].some((m) => m.startsWith("src/report/"))).toBe(false)
  })
})
