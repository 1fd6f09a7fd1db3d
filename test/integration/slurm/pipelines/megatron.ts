/**
 * A small pipeline for the Megatron backend's end-to-end tests: one corpus shard tokenized and merged,
 * then one train stage with `backend: megatron` run by the test doubles in test/doubles/ (a fake
 * torchrun starting a fake pretrain_gpt.py on each "GPU"). Preset `slow` makes every iteration take
 * 150 ms, long enough to requeue the job between two checkpoints; preset `timeout` gives the job a
 * one-minute time limit and 3 s iterations: it cannot train its 30 in one job.
 */
import * as Pipeline from "../../../../src/Pipeline.ts"
import { fromRoot } from "../../../../src/ProjectRoot.ts"
import { node, ref } from "../../../../src/Stage.ts"
import { tokenizerVocabSize } from "../../../../stages/flame/data.ts"
import { source } from "../../../../stages/source.ts"
import { mergeDatasetStage, shardName, tokenizeShardStage } from "../../../../stages/tokenize.ts"
import { train } from "../../../../stages/train.ts"

const shard = fromRoot("fixtures", "corpus", "dclm-tiny-0003.jsonl")
const name = shardName(shard)
const tokenizer = fromRoot("fixtures", "tokenizer", "tokenizer.json")
// Megatron takes the vocabulary from the tokenizer, padded to a multiple of 128: the model it saves.
const vocabSize = Math.ceil(tokenizerVocabSize(tokenizer) / 128) * 128

export default Pipeline.define({
  name: "megatron-test",
  description: "tokenize one shard, train a small model with the Megatron backend's test doubles",
  presets: {
    default: "as fast as the doubles go",
    slow: "150 ms per iteration",
    timeout: "3 s per iteration, a time limit of one minute"
  },
  defaultPreset: "default",
  build: ({ preset }) => [
    node(source, { id: "source/shard", params: { path: shard, name: "shard" } }),
    node(source, {
      id: "source/tokenizer",
      params: { path: tokenizer, name: "tokenizer.json" }
    }),
    node(tokenizeShardStage, {
      id: `tokenize/${name}`,
      params: { name },
      inputs: { shard: ref("source/shard", "shard"), tokenizer: ref("source/tokenizer", "tokenizer.json") }
    }),
    node(mergeDatasetStage, { id: "tokenize/merge", inputs: { shard0: ref(`tokenize/${name}`, "dataset") } }),
    node(train, {
      id: "train/tiny",
      params: {
        scale: "tiny",
        model: {
          vocabSize,
          hiddenSize: 32,
          numLayers: 3,
          numAttentionHeads: 4,
          ffnHiddenSize: 64,
          moeFfnHiddenSize: 16,
          numExperts: 8,
          topK: 2,
          sharedExpertSize: 32,
          moeLayers: "[0]*1+[1]*2",
          seqLength: 64
        },
        globalBatchSize: 8,
        microBatchSize: 2,
        trainIters: 30,
        saveInterval: 10,
        backend: "megatron",
        threads: 1,
        megatron: {
          path: fromRoot("test", "doubles"),
          script: "fake-pretrain-gpt.mjs",
          torchrun: fromRoot("test", "doubles", "fake-torchrun.mjs"),
          nodes: 1,
          gpusPerNode: 2,
          expertParallel: 2,
          cpusPerTask: 1,
          memoryMb: 1024,
          logInterval: 1,
          tokenizerModel: fromRoot("fixtures", "tokenizer"),
          ...(preset === "timeout" ? { time: "1" } : {}),
          env: preset === "slow" ?
            { FAKE_PRETRAIN_ITER_MS: "150" } :
            preset === "timeout" ?
            { FAKE_PRETRAIN_ITER_MS: "3000" } :
            {}
        }
      },
      inputs: { dataset: ref("tokenize/merge", "dataset") }
    })
  ]
})
