/**
 * Where a run keeps its state: promoted artifacts, staging areas, logs and the lineage database.
 */
import { Context, Layer } from "effect"
import { mkdtempSync } from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

export interface WorkspacePaths {
  readonly root: string
  readonly database: string
  readonly artifacts: string
  readonly staging: string
  readonly logs: string
  readonly trash: string
  readonly lock: string
}

export const workspacePaths = (root: string): WorkspacePaths => {
  const abs = path.resolve(root)
  return {
    root: abs,
    database: path.join(abs, "lineage.sqlite"),
    artifacts: path.join(abs, "artifacts"),
    staging: path.join(abs, "staging"),
    logs: path.join(abs, "logs"),
    trash: path.join(abs, ".trash"),
    lock: path.join(abs, ".lock")
  }
}

export class Workspace extends Context.Tag("flame-pipe/Workspace")<Workspace, WorkspacePaths>() {
  static readonly layer = (root: string) => Layer.succeed(Workspace, workspacePaths(root))
  /** A fresh temporary workspace, for tests. */
  static readonly temporary = (prefix = "flame-pipe-") =>
    Layer.sync(Workspace, () => workspacePaths(mkdtempSync(path.join(os.tmpdir(), prefix))))
}

/** Stage ids contain '/', which maps onto nested directories; anything else unusual becomes '_'. */
export const stageDir = (stageId: string): string =>
  stageId.split("/").map((part) => part.replace(/[^A-Za-z0-9._=+-]/g, "_").replace(/^\.+$/, "_")).join(path.sep)
