/**
 * Where pipelines come from: the project's `pipelines/` (bundled into the CLI, or imported from
 * their sources), or any module path whose default export is a pipeline definition.
 */
import { Context, Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { NotFound, PipelineError } from "../domain/Errors.ts"
import { importExternal } from "../importExternal.ts"
import type { PipelineDefinition } from "../Pipeline.ts"
import { fromRoot } from "../ProjectRoot.ts"

export interface PipelineRegistryShape {
  readonly names: () => ReadonlyArray<string>
  readonly load: (nameOrPath: string) => Effect.Effect<PipelineDefinition, NotFound | PipelineError>
}

export class PipelineRegistry extends Context.Tag("flame-pipe/PipelineRegistry")<
  PipelineRegistry,
  PipelineRegistryShape
>() {
  /** Imports pipeline modules from their files (TypeScript, through tsx). */
  static readonly fromFiles = Layer.sync(PipelineRegistry, () => fromModules({}))
  /** Pipelines compiled into a bundle; module paths are still imported from files. */
  static readonly fromBundle = (modules: Readonly<Record<string, unknown>>) =>
    Layer.sync(
      PipelineRegistry,
      () =>
        fromModules(
          Object.fromEntries(Object.entries(modules).map(([name, value]) => [name, () => Promise.resolve(value)]))
        )
    )
  /**
   * Pipelines compiled into the CLI bundle, each in its own chunk: a command loads only the pipeline it
   * names, so `plan` of one pipeline does not load the stages (and libraries) of every other.
   */
  static readonly fromLoaders = (loaders: Readonly<Record<string, BundledPipeline>>) =>
    Layer.sync(PipelineRegistry, () => fromModules(loaders))
}

/** A pipeline compiled into the bundle, loaded on first use. */
export type BundledPipeline = () => Promise<unknown>

const pipelinesDir = fromRoot("pipelines")

const projectPipelines = (): ReadonlyArray<string> => {
  try {
    return fs.readdirSync(pipelinesDir).filter((f) => f.endsWith(".ts")).map((f) => f.slice(0, -3)).sort()
  } catch {
    return []
  }
}

/** A module path given on the command line, as opposed to a pipeline name. */
export const isModulePath = (nameOrPath: string): boolean => /\.(ts|mts|js|mjs)$/.test(nameOrPath)

const isPipeline = (value: unknown): value is PipelineDefinition =>
  typeof value === "object" && value !== null && "name" in value && "build" in value &&
  typeof (value as PipelineDefinition).build === "function"

/**
 * Why a pipeline module did not load, in a few lines and without a stack: the loader's own message
 * (esbuild's names file:line:column), and what to do for the two common mistakes.
 */
export const loadFailure = (file: string, cause: unknown): string => {
  const text = cause instanceof Error
    ? `${cause.name === "Error" ? "" : `${cause.name}: `}${cause.message}`
    : String(cause)
  // Node appends the chain of requiring modules; the file is already named.
  const message = text.replace(/\n\s*Require stack:[\s\S]*$/, "").trim()
  const commonJs = /"cjs" output format|Cannot use import statement|Unexpected token 'export'|require\(\) of ES Module/
  if (/\.ts$/.test(file) && commonJs.test(message)) {
    return `${message}\n  (a .ts module outside a package with "type": "module" is loaded as CommonJS: ` +
      `rename it to .mts, or add a package.json with {"type": "module"} beside it)`
  }
  const missing = /Cannot find (?:module|package) '([^']+)'/.exec(message)
  if (missing !== null && !missing[1]!.startsWith(".") && !missing[1]!.startsWith("/")) {
    return `${message}\n  (packages resolve from the module's own directory upwards: put the pipeline ` +
      `inside the project, or install ${missing[1]} where it can find it)`
  }
  return message
}

const fromModules = (bundled: Readonly<Record<string, BundledPipeline>>): PipelineRegistryShape => {
  const names = () => [...new Set([...Object.keys(bundled), ...projectPipelines()])].sort()
  const check = (name: string, value: unknown, where: string) =>
    isPipeline(value)
      ? Effect.succeed(value)
      : Effect.fail(
        new PipelineError({ pipeline: name, reason: `${where} must export a pipeline definition as default` })
      )
  const importFile = (name: string, file: string) =>
    Effect.tryPromise({
      try: () => importExternal<{ default?: unknown }>(pathToFileURL(file).href),
      catch: (cause) =>
        new PipelineError({ pipeline: name, reason: `cannot load ${file}: ${loadFailure(file, cause)}` })
    }).pipe(Effect.flatMap((module) => check(name, module.default, file)))
  return {
    names,
    load: (nameOrPath) => {
      const compiled = Object.hasOwn(bundled, nameOrPath) ? bundled[nameOrPath] : undefined
      if (compiled !== undefined) {
        const where = `pipelines/${nameOrPath}.ts`
        return Effect.tryPromise({
          try: compiled,
          catch: (cause) =>
            new PipelineError({ pipeline: nameOrPath, reason: `cannot load ${where}: ${loadFailure(where, cause)}` })
        }).pipe(Effect.flatMap((value) => check(nameOrPath, value, where)))
      }
      if (isModulePath(nameOrPath) && fs.existsSync(nameOrPath)) return importFile(nameOrPath, path.resolve(nameOrPath))
      const file = path.join(pipelinesDir, `${nameOrPath}.ts`)
      if (!isModulePath(nameOrPath) && fs.existsSync(file)) return importFile(nameOrPath, file)
      return Effect.fail(
        new NotFound({
          what: "pipeline",
          name: nameOrPath,
          hint: `available: ${names().join(", ") || "(none)"}; or give the path of a pipeline module`
        })
      )
    }
  }
}
