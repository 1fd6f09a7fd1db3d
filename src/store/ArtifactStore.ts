/**
 * The artifact store: stages write into a staging directory; only a stage that succeeded has its
 * directory renamed into `artifacts/` (one atomic rename), so a killed run never leaves a partial
 * output where a complete one is expected.
 */
import { Effect } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { StoreError } from "../domain/Errors.ts"
import type { ArtifactRow } from "../lineage/Lineage.ts"
import type { OutputKind } from "../Stage.ts"
import { stageDir, Workspace } from "../workspace/Workspace.ts"
import { ContentHasher } from "./ContentHasher.ts"

export type ArtifactState = "intact" | "missing" | "modified"

export interface HashedOutput {
  readonly name: string
  /** Workspace-relative path. */
  readonly path: string
  readonly kind: OutputKind
  readonly hash: string
  readonly size: number
}

const storeTry = <A>(target: string, reason: string, f: () => A) =>
  Effect.try({ try: f, catch: (cause) => new StoreError({ path: target, reason: `${reason}: ${String(cause)}` }) })

export class ArtifactStore extends Effect.Service<ArtifactStore>()("flame-pipe/ArtifactStore", {
  effect: Effect.gen(function*() {
    const ws = yield* Workspace
    const hasher = yield* ContentHasher
    const short = (fingerprint: string) => fingerprint.slice(0, 16)

    const stagingDir = (stageId: string, fingerprint: string) =>
      path.join(ws.staging, stageDir(stageId), short(fingerprint))
    const finalDir = (stageId: string, fingerprint: string) =>
      path.join(ws.artifacts, stageDir(stageId), short(fingerprint))

    /** Moves a path out of the way; removal happens later, off the critical path. */
    const discard = (target: string) => {
      if (!fs.existsSync(target)) return
      fs.mkdirSync(ws.trash, { recursive: true })
      fs.renameSync(target, path.join(ws.trash, crypto.randomUUID()))
    }

    /** `reread`: compare the bytes, not the stat cache's word for them (run --verify, audit). */
    const checkSync = (artifact: Pick<ArtifactRow, "path" | "hash">, reread = false): ArtifactState => {
      const content = hasher.hashSync(path.resolve(ws.root, artifact.path), reread)
      return content === undefined ? "missing" : content.hash === artifact.hash ? "intact" : "modified"
    }

    return {
      stagingDir,
      finalDir,
      relative: (abs: string) => path.relative(ws.root, abs),
      absolute: (rel: string) => path.resolve(ws.root, rel),

      /** A clean staging directory, or the previous attempt's when the stage resumes. */
      prepareStaging: (stageId: string, fingerprint: string, keep: boolean) => {
        const dir = stagingDir(stageId, fingerprint)
        return storeTry(dir, "cannot prepare staging", () => {
          if (!keep) discard(dir)
          fs.mkdirSync(dir, { recursive: true })
          return dir
        })
      },

      /** The atomic step: staging -> artifacts. A stale directory at the destination is moved aside first. */
      promote: (stageId: string, fingerprint: string) => {
        const from = stagingDir(stageId, fingerprint)
        const to = finalDir(stageId, fingerprint)
        return Effect.zipRight(
          hasher.settled(from),
          storeTry(to, "cannot promote outputs", () => {
            fs.mkdirSync(path.dirname(to), { recursive: true })
            discard(to)
            fs.renameSync(from, to)
            hasher.cache.moved(from, to)
            return to
          })
        )
      },

      /** Hashes declared outputs in their final place; undefined for an output the stage did not write. */
      hashOutputs: (dir: string, outputs: Readonly<Record<string, OutputKind>>) =>
        Effect.forEach(Object.entries(outputs), ([name, kind]) => {
          const abs = path.join(dir, name)
          return Effect.map(
            hasher.hash(abs),
            (content) =>
              content === undefined || content.kind !== kind ? { name, missing: abs } as const : {
                name,
                output: {
                  name,
                  path: path.relative(ws.root, abs),
                  kind,
                  hash: content.hash,
                  size: content.size
                } satisfies HashedOutput
              } as const
          )
        }),

      /** Whether a recorded artifact is still on disk with its recorded content. Throws a StoreError. */
      checkSync,
      check: (artifact: Pick<ArtifactRow, "path" | "hash">) =>
        Effect.try({
          try: () => checkSync(artifact),
          catch: (cause) =>
            cause instanceof StoreError ? cause : new StoreError({ path: artifact.path, reason: String(cause) })
        }),

      emptyTrash: storeTry(ws.trash, "cannot empty trash", () => fs.rmSync(ws.trash, { recursive: true, force: true }))
    }
  }),
  dependencies: []
}) {}
