/**
 * The stages every FLAME-MoE pipeline starts from: the worker's sources and its build, the tokenizer,
 * and the corpus shards tokenized (and, for pipelines that read one merged dataset, merged). Built
 * here once, so the suite and the ablation give them the same ids and params, and a workspace they
 * share runs them once.
 */
import { fromRoot } from "../../src/ProjectRoot.ts"
import type { ExecutorInfo, OutputRef, StageNode } from "../../src/Stage.ts"
import { node, ref } from "../../src/Stage.ts"
import { compileKernels } from "../kernels.ts"
import { source } from "../source.ts"
import { mergeDatasetStage, shardName, tokenizeShardStage } from "../tokenize.ts"
import type { DataPaths } from "./data.ts"
import { listShards } from "./data.ts"
import { blendInputName } from "./model.ts"

/**
 * How a pipeline reads the tokenized corpus: `blend`, FLAME-MoE's way (one equally weighted
 * Megatron dataset per shard, each split on its own, blended as Megatron-core does), or `merged`
 * (the shards concatenated into one dataset, split once).
 */
export type DataMode = "blend" | "merged"

/** `--config data=blend|merged`; undefined for anything else. */
export const dataModeOf = (config: Readonly<Record<string, string>>, fallback: DataMode): DataMode | undefined =>
  config.data === undefined ? fallback : config.data === "blend" || config.data === "merged" ? config.data : undefined

/** The dataset inputs of a stage that reads the corpus in `mode` (see workerDataConfig). */
export const datasetInputs = (corpus: string, mode: DataMode): Record<string, OutputRef> =>
  mode === "merged"
    ? { dataset: ref("tokenize/merge", "dataset") }
    : Object.fromEntries(
      listShards(corpus).map((file, i) => [blendInputName(i), ref(`tokenize/${shardName(file)}`, "dataset")])
    )

export const dataAndWorker = (
  paths: Pick<DataPaths, "corpus" | "tokenizer">,
  executor: ExecutorInfo,
  mode: DataMode = "merged"
): Array<StageNode> => {
  const shards = listShards(paths.corpus)
  return [
    node(source, { id: "source/kernels/src", params: { path: fromRoot("kernels", "src"), kind: "dir", name: "src" } }),
    node(source, { id: "source/kernels/Makefile", params: { path: fromRoot("kernels", "Makefile") } }),
    node(source, { id: "source/tokenizer", params: { path: paths.tokenizer, name: "tokenizer.json" } }),
    node(compileKernels, {
      id: "compile-kernels",
      params: { cuda: executor.gpus > 0 },
      inputs: { sources: ref("source/kernels/src", "src"), makefile: ref("source/kernels/Makefile", "Makefile") }
    }),
    ...shards.flatMap((file) => {
      const name = shardName(file)
      return [
        node(source, { id: `source/corpus/${name}`, params: { path: file, name: "shard" } }),
        node(tokenizeShardStage, {
          id: `tokenize/${name}`,
          params: { name },
          inputs: { shard: ref(`source/corpus/${name}`, "shard"), tokenizer: ref("source/tokenizer", "tokenizer.json") }
        })
      ]
    }),
    ...(mode === "merged" ?
      [node(mergeDatasetStage, {
        id: "tokenize/merge",
        inputs: Object.fromEntries(
          shards.map((file, i) => [`shard${i}`, ref(`tokenize/${shardName(file)}`, "dataset")])
        )
      })] :
      [])
  ]
}
