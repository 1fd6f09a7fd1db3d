/**
 * Drives the real CLI in a child process, as a user would.
 */
import { execa } from "execa"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, onTestFinished } from "vitest"

export const root = fileURLToPath(new URL("../..", import.meta.url))
export const bin = path.join(root, "bin", "flame-pipe.js")

/**
 * A fresh workspace that is removed when the test (or, made outside a test, the file's tests) ends: a
 * tiny-suite workspace holds several GB of checkpoints. FLAME_KEEP_TEST_WORKSPACES=1 keeps them; a
 * failed test keeps its own.
 */
export const tempWorkspace = (prefix = "fp-test-") => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  if (process.env.FLAME_KEEP_TEST_WORKSPACES === "1") return dir
  const remove = () => fs.rmSync(dir, { recursive: true, force: true })
  try {
    onTestFinished(({ task }) => {
      if (task.result?.state !== "fail") remove()
    })
  } catch {
    // Not inside a test: at collection time, so the file's (or describe block's) hooks apply.
    afterAll(remove)
  }
  return dir
}

/**
 * A whole suite run takes 2-3 minutes on an idle 2-core machine; the bound is a backstop against a
 * hung CLI, not a benchmark, so it leaves room for a loaded machine.
 */
const CLI_TIMEOUT_MS = 900_000

export const cli = (args: ReadonlyArray<string>, options: { readonly timeout?: number } = {}) =>
  execa(process.execPath, [bin, ...args], {
    cwd: root,
    reject: false,
    timeout: options.timeout ?? CLI_TIMEOUT_MS,
    env: { FORCE_COLOR: "0", NO_COLOR: "1" }
  })

/** `run --json` and its parsed summary. */
export const runJson = async (args: ReadonlyArray<string>) => {
  const result = await cli(["run", ...args, "--json"])
  let summary: RunSummaryJson | undefined
  try {
    summary = JSON.parse(result.stdout) as RunSummaryJson
  } catch {
    summary = undefined
  }
  return { result, summary }
}

export interface RunSummaryJson {
  readonly status: string
  readonly executed: number
  readonly cached: number
  readonly failed: number
  readonly skipped: number
  readonly interrupted: number
  readonly stages: ReadonlyArray<
    {
      readonly stage: string
      readonly status: string
      readonly execution: string | null
      readonly error: string | null
    }
  >
}

export const executedStages = (summary: RunSummaryJson | undefined) =>
  (summary?.stages ?? []).filter((s) => s.status === "executed").map((s) => s.stage).sort()

/** A V8 stack frame line ("    at fn (file:line:col)", "    at file:line:col", "    at <anonymous>"): never on a user's screen. */
export const STACK_FRAME = /^\s+at (?:.+ \()?(?:[^()\s]+:\d+:\d+|<anonymous>|native)\)?$/m
