/**
 * The stages every FLAME-MoE pipeline starts from: the worker's sources and its build, the tokenizer,
 * and the corpus shards tokenized and merged into one Megatron dataset. Built here once, so the suite
 * and the ablation give them the same ids and params, and a workspace they share runs them once.
 */
import { fromRoot } from "../../src/ProjectRoot.ts"
import type { ExecutorInfo, StageNode } from "../../src/Stage.ts"
import { node, ref } from "../../src/Stage.ts"
import { compileKernels } from "../kernels.ts"
import { source } from "../source.ts"
import { mergeDatasetStage, shardName, tokenizeShardStage } from "../tokenize.ts"
import type { DataPaths } from "./data.ts"
import { listShards } from "./data.ts"

export const dataAndWorker = (
  paths: Pick<DataPaths, "corpus" | "tokenizer">,
  executor: ExecutorInfo
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
    node(mergeDatasetStage, {
      id: "tokenize/merge",
      inputs: Object.fromEntries(shards.map((file, i) => [`shard${i}`, ref(`tokenize/${shardName(file)}`, "dataset")]))
    })
  ]
}
