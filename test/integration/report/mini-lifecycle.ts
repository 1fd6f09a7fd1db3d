/**
 * A small slice of the suite for the report test: two tiny scales with three checkpoints each, evaluated
 * and traced at every checkpoint, the routing analyses per scale (co-activation and specialization at
 * every checkpoint, as the suite runs them) and the report, with the run's tokenizer, built from the
 * same stages and helpers as pipelines/scaling-suite.ts (and sharing the data and worker stages with it
 * and with the ablation, so a workspace that ran the ablation compiles and tokenizes nothing again).
 */
import { training } from "../../../src/flame/architecture.ts"
import { checkpointSteps } from "../../../src/flame/checkpoints.ts"
import { defaultTinyOptions, tinyScales } from "../../../src/flame/tinyPreset.ts"
import * as Pipeline from "../../../src/Pipeline.ts"
import { fromRoot } from "../../../src/ProjectRoot.ts"
import type { StageNode } from "../../../src/Stage.ts"
import { node, ref } from "../../../src/Stage.ts"
import { reportNode } from "../../../stages/analysis/report.ts"
import { routingAnalysisNodes } from "../../../stages/analysis/routing.ts"
import { evalRequests, evaluate } from "../../../stages/eval.ts"
import { tokenizerVocabSize } from "../../../stages/flame/data.ts"
import { dataAndWorker } from "../../../stages/flame/dataStages.ts"
import { tinyModel } from "../../../stages/flame/model.ts"
import { source } from "../../../stages/source.ts"
import { trace } from "../../../stages/trace.ts"
import { checkpointName, train } from "../../../stages/train.ts"

const paths = {
  corpus: fromRoot("fixtures", "corpus"),
  tokenizer: fromRoot("fixtures", "tokenizer", "tokenizer.json")
}

const build = (): ReadonlyArray<StageNode> => {
  const nodes = dataAndWorker(paths, { gpus: 0 })
  nodes.push(
    node(evalRequests, {
      id: "eval/requests",
      params: { limit: 4 },
      inputs: { tokenizer: ref("source/tokenizer", "tokenizer.json"), tasks: ref("source/tasks", "tasks") }
    }),
    node(source, { id: "source/tasks", params: { path: fromRoot("fixtures", "eval"), kind: "dir", name: "tasks" } })
  )
  const dataset = ref("tokenize/merge", "dataset")
  const worker = ref("compile-kernels", "flame-worker")
  const scales = tinyScales({ ...defaultTinyOptions, vocabSize: tokenizerVocabSize(paths.tokenizer) })
    .filter((s) => s.id === "flame-moe-38m-tiny" || s.id === "flame-moe-115m-tiny")
  for (const t of scales) {
    const id = `${t.id}-mini`
    const model = tinyModel(t)
    const plan = { trainIters: 6, saveInterval: 2 }
    nodes.push(node(train, {
      id: `train/${id}`,
      params: {
        scale: id,
        model,
        globalBatchSize: t.globalBatchSize,
        microBatchSize: t.microBatchSize,
        ...plan,
        lr: 10 * training.lr,
        minLr: 10 * training.minLr,
        threads: 1
      },
      inputs: { dataset, worker }
    }))
    const steps = checkpointSteps(plan)
    for (const step of steps) {
      const checkpoint = ref(`train/${id}`, checkpointName(step))
      nodes.push(
        node(evaluate, {
          id: `eval/${id}/${step}`,
          params: { scale: id, step, model, valSamples: 16 },
          inputs: { checkpoint, dataset, worker, requests: ref("eval/requests", "requests") }
        }),
        node(trace, {
          id: `trace/${id}/${step}`,
          params: { scale: id, step, model },
          inputs: { checkpoint, dataset, worker }
        })
      )
    }
    nodes.push(...routingAnalysisNodes({
      scale: id,
      steps,
      traceStage: (step) => `trace/${id}/${step}`,
      vocabSize: model.vocabSize,
      minOccurrences: 3,
      everyCheckpoint: true
    }))
  }
  nodes.push(
    reportNode({
      id: "mini/report",
      title: "Mini lifecycle",
      pipeline: "mini-lifecycle",
      preset: "tiny",
      nodes,
      tokenizer: ref("source/tokenizer", "tokenizer.json")
    })
  )
  return nodes
}

export default Pipeline.define({
  name: "mini-lifecycle",
  description: "two tiny scales, three checkpoints each, evaluated, traced, analysed and reported",
  presets: { tiny: "the only preset" },
  defaultPreset: "tiny",
  build: () => build()
})
