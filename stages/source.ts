/**
 * A source: a file or directory from outside the workspace (a corpus shard, a tokenizer, the kernel
 * sources) brought into the store, so that everything downstream has lineage back to it. Its content
 * hash is part of the fingerprint: editing the original reruns what depends on it.
 *
 * Small files (the kernel sources, a tokenizer) are copied — cloned where the file system can — so
 * editing the original in place never changes what the store recorded. Large files (multi-GB corpus
 * shards, which nobody edits in place) are hard-linked when the workspace is on the same file
 * system, so importing them costs nothing; should one be edited anyway, the store sees its recorded
 * hash no longer matches and the stage reruns.
 */
import { Effect, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { StageFailed } from "../src/domain/Errors.ts"
import { define } from "../src/Stage.ts"
import { FileName } from "../src/workspace/StagePaths.ts"

const LINK_AT_BYTES = 64 * 1024 * 1024

const linkOrCopy = (from: string, to: string): number => {
  const st = fs.statSync(from)
  if (st.isDirectory()) {
    fs.mkdirSync(to, { recursive: true })
    let files = 0
    for (const entry of fs.readdirSync(from).sort()) files += linkOrCopy(path.join(from, entry), path.join(to, entry))
    return files
  }
  if (st.size >= LINK_AT_BYTES) {
    try {
      fs.linkSync(from, to)
      return 1
    } catch {
      // Another file system: copy.
    }
  }
  fs.copyFileSync(from, to, fs.constants.COPYFILE_FICLONE)
  return 1
}

export const source = define({
  kind: "source",
  version: "1",
  params: Schema.Struct({
    path: Schema.String,
    kind: Schema.optionalWith(Schema.Literal("file", "dir"), { default: () => "file" as const }),
    /** Output name, a plain file name; defaults to the source's base name. */
    name: Schema.optional(FileName)
  }),
  outputs: (p) => ({ [p.name ?? path.basename(p.path)]: p.kind }),
  result: Schema.Struct({ files: Schema.Number }),
  sources: (p) => [p.path],
  // A re-execution re-imports the original: byte-identical unless the file outside the workspace changed.
  reproducibility: { _tag: "bitwise" },
  run: (ctx) =>
    Effect.try({
      try: () => ({
        files: linkOrCopy(path.resolve(ctx.params.path), ctx.output(ctx.params.name ?? path.basename(ctx.params.path)))
      }),
      catch: (cause) =>
        new StageFailed({ stage: ctx.stageId, reason: `cannot import ${ctx.params.path}: ${String(cause)}` })
    })
})
