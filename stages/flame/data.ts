/**
 * Where a FLAME-MoE pipeline's data comes from (the DCLM shards, the tokenizer, the evaluation task
 * files) and the check every such pipeline makes before anything runs: a missing path or missing
 * GPUs stops it with a message that says what to set and where.
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { PipelineError } from "../../src/domain/Errors.ts"
import { JsonFileError, readJsonFile } from "../../src/domain/JsonFile.ts"
import { fromRoot } from "../../src/ProjectRoot.ts"
import type { ExecutorInfo } from "../../src/Stage.ts"

const SHARD = /\.jsonl(\.zstd?|\.zst)?$/

/** Corpus shards: a directory's jsonl files, or a glob-like `dir/prefix*` pattern. */
export const listShards = (spec: string): ReadonlyArray<string> => {
  const star = spec.indexOf("*")
  const dir = star >= 0 ? path.dirname(spec.slice(0, star + 1)) : spec
  const pattern = star >= 0
    ? new RegExp(`^${path.basename(spec).replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*")}$`)
    : SHARD
  return fs.readdirSync(dir).filter((f) => pattern.test(f) && SHARD.test(f)).sort().map((f) => path.join(dir, f))
}

/** len(tokenizer) as Megatron's HuggingFaceTokenizer reports it: the highest id, added tokens included, plus one. */
export const tokenizerVocabSize = (file: string): number => {
  const json = readJsonFile(file) as {
    model?: { vocab?: unknown }
    added_tokens?: unknown
  } | null
  const vocab = json?.model?.vocab
  if (typeof vocab !== "object" || vocab === null || Array.isArray(vocab)) {
    throw new JsonFileError({ file, reason: "model.vocab: expected an object of token -> id (a BPE tokenizer.json)" })
  }
  const added = json?.added_tokens ?? []
  if (!Array.isArray(added)) throw new JsonFileError({ file, reason: "added_tokens: expected an array" })
  const ids = [...Object.values(vocab), ...added.map((t: { id?: unknown }) => t?.id)]
  const bad = ids.findIndex((id) => !Number.isSafeInteger(id) || (id as number) < 0)
  if (bad >= 0) {
    throw new JsonFileError({
      file,
      reason: `token ids must be non-negative integers (found ${JSON.stringify(ids[bad])})`
    })
  }
  if (ids.length === 0) throw new JsonFileError({ file, reason: "model.vocab is empty" })
  return Math.max(...(ids as Array<number>)) + 1
}

export interface DataPaths {
  readonly corpus: string
  readonly tokenizer: string
  /** Only for pipelines that evaluate on the harness tasks. */
  readonly tasks?: string
}

/**
 * Where a FLAME-MoE pipeline's data comes from: `--config corpus=... tokenizer=... [tasks=...]`, and
 * for the tiny preset the bundled fixtures unless overridden. Empty strings are what preflight reports.
 */
export const dataPathsFor = (preset: string, config: Readonly<Record<string, string>>): Required<DataPaths> => {
  const tiny = preset === "tiny"
  return {
    corpus: config.corpus ?? (tiny ? fromRoot("fixtures", "corpus") : ""),
    tokenizer: config.tokenizer ?? (tiny ? fromRoot("fixtures", "tokenizer", "tokenizer.json") : ""),
    tasks: config.tasks ?? (tiny ? fromRoot("fixtures", "eval") : "")
  }
}

/** The settings still missing, one line each (empty when the pipeline can run). */
export const missingSettings = (
  paths: DataPaths,
  options: { readonly needsGpus: boolean; readonly executor: ExecutorInfo }
): ReadonlyArray<string> => {
  const missing: Array<string> = []
  if (paths.corpus === "") {
    missing.push("the DCLM corpus: --config corpus=/path/to/dclm (a directory of .jsonl.zstd shards, or dir/prefix*)")
  } else if (!fs.existsSync(paths.corpus.includes("*") ? path.dirname(paths.corpus) : paths.corpus)) {
    missing.push(`the DCLM corpus: ${paths.corpus} does not exist (--config corpus=...)`)
  } else if (listShards(paths.corpus).length === 0) {
    missing.push(`the DCLM corpus: no .jsonl, .jsonl.zst or .jsonl.zstd files in ${paths.corpus}`)
  }
  if (paths.tokenizer === "") {
    missing.push("pythia-12b's tokenizer: --config tokenizer=/path/to/tokenizer.json")
  } else if (!fs.existsSync(paths.tokenizer)) {
    missing.push(`the tokenizer: ${paths.tokenizer} does not exist (--config tokenizer=...)`)
  }
  if (paths.tasks === "") {
    missing.push(
      "the evaluation task files: --config tasks=/path/to/tasks (see fixtures/eval/README.md for the layout)"
    )
  } else if (paths.tasks !== undefined && !fs.existsSync(paths.tasks)) {
    missing.push(`the evaluation task files: ${paths.tasks} does not exist (--config tasks=...)`)
  }
  if (options.needsGpus && options.executor.gpus === 0) {
    missing.push("GPUs: none detected (nvidia-smi); pass --gpus 0,1,... on a GPU machine")
  }
  return missing
}

/** A pipeline's preflight: fails naming every missing setting, and points at the tiny preset. */
export const requireData = (
  pipeline: string,
  preset: string,
  paths: DataPaths,
  executor: ExecutorInfo
): Effect.Effect<void, PipelineError> => {
  const missing = missingSettings(paths, { needsGpus: preset === "full", executor })
  return missing.length === 0 ? Effect.void : Effect.fail(
    new PipelineError({
      pipeline,
      reason: `preset ${preset} cannot run yet; set:\n  - ${missing.join("\n  - ")}\n` +
        `(or run the tiny preset: flame-pipe run ${pipeline} --preset tiny)`
    })
  )
}
