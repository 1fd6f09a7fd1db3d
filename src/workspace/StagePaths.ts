/**
 * A stage writes only inside its own staging directory. Two guards keep it there: params that become
 * a path component are plain file names (`FileName`), refused when the pipeline is resolved; and the
 * stage context's `output(...)` refuses any name that resolves outside the directory, whatever a
 * stage body passes it, so a value that slipped past a schema still cannot write elsewhere.
 */
import { Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { StageFailed } from "../domain/Errors.ts"

/** Why `name` is not a plain file name, or undefined when it is one. */
export const fileNameProblem = (name: string): string | undefined => {
  if (name === "") return "must not be empty"
  if (name === "." || name === "..") return `'${name}' is not a file name`
  if (name.includes("/") || name.includes("\\")) return `'${name}' must be a plain file name, without '/' or '\\'`
  // NUL ends a path in the kernel; other control characters make names that cannot be typed or shown.
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return `${JSON.stringify(name)} must not contain control characters`
  return undefined
}

/**
 * A single path component: not empty, not `.` or `..`, no separator, no NUL or other control
 * character. Params that name files inside a stage's directory use it.
 */
export const FileName = Schema.String.pipe(
  Schema.filter((name) => fileNameProblem(name) ?? true, {
    identifier: "FileName",
    description: "a plain file name (no '/', no '..', no control characters)"
  }),
  Schema.brand("FileName")
)
export type FileName = typeof FileName.Type

/** Whether `target` is strictly inside `dir` (both absolute and normalized). */
const isInside = (dir: string, target: string): boolean => {
  const relative = path.relative(dir, target)
  return relative !== "" && relative !== ".." && !relative.startsWith(`..${path.sep}`) && !path.isAbsolute(relative)
}

/**
 * Where `target` really is: the nearest part of it that exists with its symbolic links resolved, and
 * the rest (not created yet) appended. Undefined for a dangling link, which has no place to check.
 */
const realLocation = (target: string): string | undefined => {
  const missing: Array<string> = []
  let existing = target
  for (;;) {
    try {
      fs.lstatSync(existing)
      break
    } catch {
      const parent = path.dirname(existing)
      if (parent === existing) return target
      missing.unshift(path.basename(existing))
      existing = parent
    }
  }
  try {
    return path.join(fs.realpathSync(existing), ...missing)
  } catch {
    return undefined
  }
}

/**
 * The stage context's `output`: the absolute path of `name` (and any further components) under the
 * stage's directory. A path that would land outside it, lexically or through a symbolic link, is
 * refused by throwing a StageFailed that names the stage and the name; the engine records it as the
 * stage's failure.
 */
export const confinedOutput = (stageId: string, dir: string) => {
  const root = path.resolve(dir)
  return (name: string, ...more: ReadonlyArray<string>): string => {
    const shown = [name, ...more].join("/")
    const refuse = (why: string): never => {
      throw new StageFailed({ stage: stageId, reason: `refusing to write output '${shown}': ${why}` })
    }
    const parts = [name, ...more]
    for (const part of parts) {
      // eslint-disable-next-line no-control-regex
      if (part === "" || /\u0000/.test(part)) refuse("not a file name")
    }
    const target = path.resolve(root, ...parts)
    if (!isInside(root, target)) refuse(`it resolves outside the stage's directory (${root})`)
    const real = realLocation(target) ?? refuse(`${target} is a symbolic link to nothing`)
    const realRoot = realLocation(root)
    if (realRoot !== undefined && !isInside(realRoot, real)) {
      refuse(`a symbolic link takes it outside the stage's directory (to ${real})`)
    }
    return target
  }
}
