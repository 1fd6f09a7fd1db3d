/**
 * The project's root directory, found from this module's location, so paths stay right whether the
 * code runs from its TypeScript sources or from the bundled CLI in dist/.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const findRoot = (start: string): string => {
  let dir = start
  for (;;) {
    const manifest = path.join(dir, "package.json")
    if (fs.existsSync(manifest)) {
      try {
        if ((JSON.parse(fs.readFileSync(manifest, "utf8")) as { name?: string }).name === "flame-pipe") return dir
      } catch {
        // Not ours; keep looking.
      }
    }
    const parent = path.dirname(dir)
    if (parent === dir) throw new Error(`cannot find the flame-pipe project root above ${start}`)
    dir = parent
  }
}

export const projectRoot = findRoot(path.dirname(fileURLToPath(import.meta.url)))

export const fromRoot = (...segments: ReadonlyArray<string>): string => path.join(projectRoot, ...segments)
