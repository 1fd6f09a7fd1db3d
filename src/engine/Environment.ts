/**
 * A snapshot of where executions run: project commit, Node, compilers, GPUs. Taken once per run and
 * shared by identical snapshots, so each execution records it at the cost of one id.
 */
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { EnvironmentRow } from "../lineage/Lineage.ts"
import { projectRoot } from "../ProjectRoot.ts"
import { sha256Text } from "../store/ContentHasher.ts"
import { canonicalJson } from "./Fingerprint.ts"

const firstLine = (file: string, args: ReadonlyArray<string>): string | undefined => {
  try {
    const out = execFileSync(file, [...args], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
      timeout: 10_000
    })
    return out.split("\n").find((l) => l.trim() !== "")?.trim()
  } catch {
    return undefined
  }
}

const git = (args: ReadonlyArray<string>): string | undefined => {
  try {
    return execFileSync("git", ["-C", projectRoot, ...args], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
      timeout: 10_000
    }).trim()
  } catch {
    return undefined
  }
}

/**
 * Whether `file` is an executable on PATH. Looking costs a few stats; finding out by spawning it costs
 * a fork and an exec per PATH entry, which `plan --gpus auto` would pay on every machine without GPUs.
 * Without PATH, it answers yes and lets the spawn decide.
 */
export const onPath = (file: string, env: NodeJS.ProcessEnv = process.env): boolean =>
  env.PATH === undefined || env.PATH.split(path.delimiter).some((dir) => {
    try {
      fs.accessSync(path.resolve(dir === "" ? "." : dir, file), fs.constants.X_OK)
      return true
    } catch {
      return false
    }
  })

/** GPUs as nvidia-smi reports them; none when there is no driver. */
export const detectGpus = (): ReadonlyArray<
  { readonly index: string; readonly name: string; readonly driver: string }
> => {
  if (!onPath("nvidia-smi")) return []
  const out = firstLineAll("nvidia-smi", ["--query-gpu=index,name,driver_version", "--format=csv,noheader"])
  return out.map((line) => {
    const [index = "", name = "", driver = ""] = line.split(",").map((s) => s.trim())
    return { index, name, driver }
  })
}

const firstLineAll = (file: string, args: ReadonlyArray<string>): ReadonlyArray<string> => {
  try {
    return execFileSync(file, [...args], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 10_000 })
      .split("\n").map((l) => l.trim()).filter((l) => l !== "")
  } catch {
    return []
  }
}

export const snapshotEnvironment = Effect.sync((): EnvironmentRow => {
  const commit = git(["rev-parse", "HEAD"])
  const status = commit === undefined ? undefined : git(["status", "--porcelain", "--untracked-files=no"])
  const compilers: Record<string, string> = {}
  const gxx = firstLine("g++", ["--version"])
  if (gxx) compilers["g++"] = gxx
  const nvcc = firstLineAll("nvcc", ["--version"]).find((l) => l.startsWith("Cuda compilation tools"))
  if (nvcc) compilers.nvcc = nvcc
  const gpus = detectGpus().map(({ driver, name }) => ({ name, driver }))
  const content = {
    gitCommit: commit ?? null,
    gitDirty: status === undefined ? null : status.length > 0,
    nodeVersion: process.version,
    platform: `${os.platform()}-${os.arch()} ${os.release()}`,
    host: os.hostname(),
    compilers,
    gpus
  }
  return { id: sha256Text(canonicalJson(content)).slice(0, 32), ...content, createdAt: Date.now() }
})
