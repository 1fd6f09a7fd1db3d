/**
 * The CLI's start-up: `--version` answers before the CLI loads, and a command loads only its own
 * implementation from the split bundle (`plan` never the report's charting library, audit, gc or the
 * Slurm executor).
 */
import { execa } from "execa"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { buildCli, bundlePath } from "../../../scripts/build-cli.mjs"
import { bin, root, tempWorkspace } from "../../support/cli.ts"

const version = (JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as { version: string }).version

// Records every bundle chunk node resolves, through a module hook in the child process.
const hooks = `data:text/javascript,${
  encodeURIComponent(
    `import { appendFileSync } from "node:fs"
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context)
  if (result.url.includes("-chunk-")) appendFileSync(process.env.FLAME_TRACE, result.url + "\\n")
  return result
}`
  )
}`
const register = `data:text/javascript,${
  encodeURIComponent(`import { register } from "node:module"; register(${JSON.stringify(hooks)})`)
}`

/** The source modules inside the chunks a command loaded (esbuild marks each with a `// path` line). */
const loadedModules = async (args: ReadonlyArray<string>) => {
  const trace = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "fp-trace-")), "chunks")
  const result = await execa("node", ["--import", register, bundlePath, ...args], {
    cwd: root,
    reject: false,
    env: { FLAME_TRACE: trace }
  })
  const chunks = fs.existsSync(trace) ? [...new Set(fs.readFileSync(trace, "utf8").trim().split("\n"))] : []
  const modules = chunks.flatMap((url) =>
    [...fs.readFileSync(new URL(url), "utf8").matchAll(/^\/\/ ((?:src|node_modules|pipelines|stages)\/\S+)$/gm)]
      .map((m) => m[1]!)
  )
  return { result, chunks, modules: new Set(modules) }
}

describe("start-up", () => {
  beforeAll(async () => {
    await buildCli()
  })

  it("--version prints the package's version, from bin/ and from the bundle", async () => {
    expect((await execa("node", [bin, "--version"])).stdout).toBe(version)
    expect((await execa("node", [bundlePath, "--version"])).stdout).toBe(version)
  })

  it("plan loads neither the report, audit, gc nor the Slurm executor", async () => {
    const ws = tempWorkspace()
    const { chunks, modules, result } = await loadedModules(["plan", "toy", "--workspace", ws, "--gpus", "none"])
    expect(result.exitCode, result.stderr).toBe(0)
    expect(result.stdout).toContain("stages would run")
    expect(chunks.length).toBeGreaterThan(0)
    expect([...modules].some((m) => m.startsWith("src/engine/Planner"))).toBe(true)
    const unwanted = [...modules].filter((m) =>
      /^(src\/(audit|gc|report)\/|src\/slurm\/SlurmExecutor|node_modules\/echarts\/)/.test(m)
    )
    expect(unwanted).toEqual([])
  })

  it("report loads the report's code only when it runs", async () => {
    const { modules } = await loadedModules(["report", "--help"])
    expect([...modules].some((m) => m.startsWith("src/report/"))).toBe(false)
  })
})
