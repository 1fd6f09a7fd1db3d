/**
 * Tokenization: one stage per DCLM shard (cached per shard), then a merge into one Megatron
 * indexed dataset, as FLAME-MoE's preprocess_data.py (--append-eod) + merge_datasets.py did.
 */
import { Effect, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { mergeIndexedDatasets } from "../src/data/IndexedDataset.ts"
import { StageFailed } from "../src/domain/Errors.ts"
import { define } from "../src/Stage.ts"
import { tokenizeOnWorker } from "../src/tokenize/parallel.ts"
import { megatronOutputPrefix, OnBadLine, ShardStats } from "../src/tokenize/tokenizeShard.ts"
import { FileName } from "../src/workspace/StagePaths.ts"

/** Shard file name without its .jsonl[.zst|.zstd] suffix: `shard_00.jsonl.zstd` -> `shard_00`. */
export const shardName = (file: string): string => path.basename(file).replace(/\.jsonl(\.zstd?|\.zst)?$/, "")

/** The one Megatron dataset (prefix = path without .bin/.idx) in a dataset directory. */
export const datasetPrefix = (dir: string): string => {
  const idx = fs.readdirSync(dir).filter((f) => f.endsWith(".idx")).sort()
  if (idx.length !== 1) throw new Error(`expected one .idx file in ${dir}, found ${idx.length}`)
  return path.join(dir, idx[0]!.slice(0, -4))
}

const failed = (stage: string) => (error: { readonly message: string }) =>
  new StageFailed({ stage, reason: error.message })

export const tokenizeShardStage = define({
  kind: "tokenize/shard",
  version: "1",
  params: Schema.Struct({
    /** The dataset's file name prefix (`<name>_<textKey>_document.{bin,idx}`): a plain file name. */
    name: FileName,
    onBadLine: Schema.optionalWith(OnBadLine, { default: () => "fail" as const }),
    /** The JSON key holding the text; it is part of the dataset's file names too. */
    textKey: Schema.optionalWith(FileName, { default: () => FileName.make("text") })
  }),
  outputs: () => ({ dataset: "dir" }),
  result: ShardStats,
  run: (ctx) =>
    Effect.gen(function*() {
      const dir = ctx.output("dataset")
      fs.mkdirSync(dir, { recursive: true })
      // On a worker thread: the executor runs several shards' stages at once, each on its own core.
      const { stats } = yield* tokenizeOnWorker({ tokenizerPath: ctx.inputs.tokenizer! }, {
        input: ctx.inputs.shard!,
        outputPrefix: ctx.output("dataset", megatronOutputPrefix(ctx.params.name, ctx.params.textKey)),
        onBadLine: ctx.params.onBadLine,
        textKey: ctx.params.textKey
      }).pipe(Effect.mapError(failed(ctx.stageId)))
      if (stats.badLines.count > 0) {
        yield* ctx.log(
          `skipped ${stats.badLines.count} bad line(s) of ${ctx.inputs.shard}; first: ${
            stats.badLines.firstLines.join(", ")
          }`
        )
      }
      yield* ctx.metric("documents", 0, stats.documents)
      yield* ctx.metric("tokens", 0, stats.tokens)
      yield* ctx.metric("bad_lines", 0, stats.badLines.count)
      return stats
    }),
  reproducibility: { _tag: "bitwise" }
})

export const mergeDatasetStage = define({
  kind: "tokenize/merge",
  version: "1",
  params: Schema.Struct({ name: Schema.optionalWith(FileName, { default: () => FileName.make("dclm") }) }),
  outputs: () => ({ dataset: "dir" }),
  result: Schema.Struct({ sequences: Schema.Number, documents: Schema.Number, dtype: Schema.String }),
  run: (ctx) =>
    Effect.gen(function*() {
      // Inputs are named shard0, shard1, ...: merge in that order (the pipeline's shard order).
      const names = Object.keys(ctx.inputs).sort((a, b) => Number(a.replace(/\D/g, "")) - Number(b.replace(/\D/g, "")))
      const prefixes = yield* Effect.try({
        try: () => names.map((n) => datasetPrefix(ctx.inputs[n]!)),
        catch: (e) => new StageFailed({ stage: ctx.stageId, reason: String(e) })
      })
      const out = ctx.output("dataset", megatronOutputPrefix(ctx.params.name))
      return yield* mergeIndexedDatasets(prefixes, out).pipe(Effect.mapError(failed(ctx.stageId)))
    }),
  reproducibility: { _tag: "bitwise" }
})
