/**
 * Finds a pipeline by name (`pipelines/<name>.ts` of the project) or by path to a module whose
 * default export is a pipeline definition.
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { NotFound, PipelineError } from "../domain/Errors.ts"
import { projectRoot } from "../engine/Environment.ts"
import type { PipelineDefinition } from "../Pipeline.ts"

export const pipelinesDir = path.join(projectRoot, "pipelines")

export const availablePipelines = (): ReadonlyArray<string> => {
  try {
    return fs.readdirSync(pipelinesDir).filter((f) => f.endsWith(".ts")).map((f) => f.slice(0, -3)).sort()
  } catch {
    return []
  }
}

const locate = (nameOrPath: string): string | undefined => {
  if (/\.(ts|js|mjs)$/.test(nameOrPath) && fs.existsSync(nameOrPath)) return path.resolve(nameOrPath)
  const bundled = path.join(pipelinesDir, `${nameOrPath}.ts`)
  return fs.existsSync(bundled) ? bundled : undefined
}

const isPipeline = (value: unknown): value is PipelineDefinition =>
  typeof value === "object" && value !== null && "name" in value && "build" in value &&
  typeof (value as PipelineDefinition).build === "function"

export const loadPipeline = (nameOrPath: string): Effect.Effect<PipelineDefinition, NotFound | PipelineError> =>
  Effect.gen(function*() {
    const file = locate(nameOrPath)
    if (file === undefined) {
      return yield* new NotFound({
        what: "pipeline",
        name: nameOrPath,
        hint: `available: ${availablePipelines().join(", ") || "(none)"}; or give the path of a .ts module`
      })
    }
    const module = yield* Effect.tryPromise({
      try: () => import(pathToFileURL(file).href) as Promise<{ default?: unknown }>,
      catch: (cause) => new PipelineError({ pipeline: nameOrPath, reason: `cannot load ${file}: ${String(cause)}` })
    })
    if (!isPipeline(module.default)) {
      return yield* new PipelineError({
        pipeline: nameOrPath,
        reason: `${file} must export a pipeline definition as its default export`
      })
    }
    return module.default
  })
