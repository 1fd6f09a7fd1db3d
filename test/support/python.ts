/**
 * The Python that independent reference computations run on: the first of `python3` on PATH and
 * Debian's /usr/bin/python3 that imports what the reference needs (a pyenv python may lack what
 * `apt-get install python3-scipy` gave the system one). A missing module fails the test that needs
 * it, naming what to install, instead of skipping it.
 */
import { spawnSync } from "node:child_process"

const candidates = ["python3", "/usr/bin/python3"]
const found = new Map<string, string>()

export const pythonWith = (...modules: ReadonlyArray<string>): string => {
  const key = modules.join(",")
  const known = found.get(key)
  if (known !== undefined) return known
  const probe = modules.map((m) => `import ${m}`).join("; ") || "pass"
  for (const python of candidates) {
    if (spawnSync(python, ["-c", probe], { stdio: "ignore" }).status === 0) {
      found.set(key, python)
      return python
    }
  }
  throw new Error(
    `no python3 with ${modules.join(", ")} (tried ${candidates.join(", ")}); Debian: apt-get install ` +
      modules.map((m) => `python3-${m.split(".")[0]}`).join(" ")
  )
}
