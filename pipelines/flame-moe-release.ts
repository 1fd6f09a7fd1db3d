/**
 * flame-moe-release: the released FLAME-MoE models (Megatron-LM checkpoints), evaluated and analysed
 * as the suite analyses what it trains.
 *
 *   source/checkpoint/<scale>/<step> -> import/<scale>/<step> ─┬-> eval/<scale>/<step>
 *                                                              └-> trace/<scale>/<step>
 *   per scale: analysis/<scale>/{saturation (against that model's final checkpoint), load-balance,
 *              coactivation, specialization (at every checkpoint: .../<step> for the earlier ones),
 *              specialization-tracking (the final top tokens of each expert over the checkpoints)};
 *   then suite/table and suite/report (routing over training; tokens decoded with the run's tokenizer)
 *
 * `--config checkpoints=DIR[,DIR...]`: downloaded model directories (a Hugging Face repo such as
 * FLAME-MoE-290M-1.3B, or a Megatron save directory), each holding iter_XXXXXXX checkpoints; the
 * scale is recognised from the directory's name (the released name or our id) and the iterations
 * from the checkpoint directories. Corpus, tokenizer and tasks as in the suite; the corpus is read as
 * FLAME-MoE read it (per-shard blend), so validation loss and traces are on its held-out samples.
 *
 * Presets: `full` expects the published shapes; `tiny` expects the suite's tiny shapes, for which the
 * tests generate small Megatron-format checkpoints (scripts/megatron/write_checkpoint.py).
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { PipelineError } from "../src/domain/Errors.ts"
import { training } from "../src/flame/architecture.ts"
import type { TrainingRun } from "../src/flame/heldOut.ts"
import { scales } from "../src/flame/scales.ts"
import { defaultTinyOptions, tinyScales } from "../src/flame/tinyPreset.ts"
import * as Pipeline from "../src/Pipeline.ts"
import type { ExecutorInfo, StageNode } from "../src/Stage.ts"
import { node, ref } from "../src/Stage.ts"
import { routingAnalysisNodes } from "../stages/analysis/routing.ts"
import { evalRequests } from "../stages/eval.ts"
import { checkpointStages, publishedModel, tableAndReport } from "../stages/flame/checkpointStages.ts"
import { dataPathsFor, missingSettings, tokenizerVocabSize } from "../stages/flame/data.ts"
import { dataAndWorker, datasetInputs } from "../stages/flame/dataStages.ts"
import { type ModelParams, tinyModel } from "../stages/flame/model.ts"
import { importMegatron } from "../stages/importMegatron.ts"
import { workerOutput } from "../stages/kernels.ts"
import { source } from "../stages/source.ts"

interface ReleaseScale {
  readonly id: string
  /** Directory names that denote this scale: our id and the released model's name. */
  readonly names: ReadonlyArray<string>
  readonly model: ModelParams
  /** How it was trained: what decides the held-out samples (src/flame/heldOut.ts). */
  readonly run: TrainingRun
}

const releaseScales = (preset: string, tokenizer: string): ReadonlyArray<ReleaseScale> =>
  preset === "tiny"
    ? tinyScales({ ...defaultTinyOptions, vocabSize: tokenizerVocabSize(tokenizer) }).map((t) => ({
      id: t.id,
      names: [t.id],
      model: tinyModel(t),
      run: { trainIters: t.trainIters, globalBatchSize: t.globalBatchSize, evalInterval: t.evalInterval }
    }))
    : scales.map((s) => ({
      id: s.id,
      names: [s.id, s.name],
      model: publishedModel(s),
      run: { trainIters: s.trainIters, globalBatchSize: training.globalBatchSize, evalInterval: s.evalInterval }
    }))

const ITER = /^iter_(\d{7})$/

export interface DiscoveredCheckpoint {
  readonly scale: string
  readonly step: number
  readonly dir: string
}

/** The model directories named in `--config checkpoints=...`, comma-separated. */
const checkpointRoots = (config: Readonly<Record<string, string>>): ReadonlyArray<string> =>
  (config.checkpoints ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "")

/** iter_XXXXXXX directories directly in `dir` or one level below it (a repo may keep them in a subfolder). */
const iterDirs = (dir: string): ReadonlyArray<{ dir: string; step: number }> => {
  const found: Array<{ dir: string; step: number }> = []
  const scan = (d: string, depth: number) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue
      const m = ITER.exec(entry.name)
      if (m) found.push({ dir: path.join(d, entry.name), step: Number(m[1]) })
      else if (depth === 0 && !entry.name.startsWith(".")) scan(path.join(d, entry.name), 1)
    }
  }
  scan(dir, 0)
  return found.sort((a, b) => a.step - b.step)
}

/** Finds each root's scale (by its directory name) and checkpoints; lines describing what is wrong otherwise. */
export const discoverCheckpoints = (
  roots: ReadonlyArray<string>,
  known: ReadonlyArray<ReleaseScale>
): { found: ReadonlyArray<DiscoveredCheckpoint>; problems: ReadonlyArray<string> } => {
  const found: Array<DiscoveredCheckpoint> = []
  const problems: Array<string> = []
  const seen = new Set<string>()
  for (const root of roots) {
    if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) {
      problems.push(`checkpoints: ${root} is not a directory`)
      continue
    }
    const base = path.basename(path.resolve(root)).toLowerCase()
    const scale = known.find((s) => s.names.some((n) => n.toLowerCase() === base))
    if (scale === undefined) {
      problems.push(
        `checkpoints: cannot tell the scale of ${root} from its name (expected one of ${
          known.flatMap((s) => s.names).join(", ")
        })`
      )
      continue
    }
    if (seen.has(scale.id)) {
      problems.push(`checkpoints: two directories hold ${scale.id}`)
      continue
    }
    seen.add(scale.id)
    const iters = iterDirs(root)
    if (iters.length === 0) problems.push(`checkpoints: ${root} holds no iter_XXXXXXX checkpoint directory`)
    for (const it of iters) found.push({ scale: scale.id, step: it.step, dir: it.dir })
  }
  return { found, problems }
}

const build = (
  preset: string,
  config: Readonly<Record<string, string>>,
  executor: ExecutorInfo
): ReadonlyArray<StageNode> => {
  const paths = dataPathsFor(preset, config)
  const known = releaseScales(preset, paths.tokenizer)
  const { found } = discoverCheckpoints(checkpointRoots(config), known)
  const nodes: Array<StageNode> = [
    ...dataAndWorker(paths, executor, "blend"),
    node(source, { id: "source/tasks", params: { path: paths.tasks, kind: "dir", name: "tasks" } }),
    node(evalRequests, {
      id: "eval/requests",
      params: preset === "tiny" ? { limit: 8 } : {},
      inputs: { tokenizer: ref("source/tokenizer", "tokenizer.json"), tasks: ref("source/tasks", "tasks") }
    })
  ]
  const worker = ref("compile-kernels", workerOutput(executor))
  const data = datasetInputs(paths.corpus, "blend")
  const finals: Array<[string, number]> = []
  for (const scale of known) {
    const mine = found.filter((c) => c.scale === scale.id)
    if (mine.length === 0) continue
    for (const c of mine) {
      const sourceId = `source/checkpoint/${scale.id}/${c.step}`
      nodes.push(node(source, { id: sourceId, params: { path: c.dir, kind: "dir", name: "megatron" } }))
      nodes.push(node(importMegatron, {
        id: `import/${scale.id}/${c.step}`,
        params: { scale: scale.id, step: c.step, model: scale.model },
        inputs: { megatron: ref(sourceId, "megatron"), worker }
      }))
      nodes.push(...checkpointStages({
        scale: scale.id,
        step: c.step,
        model: scale.model,
        run: scale.run,
        checkpoint: ref(`import/${scale.id}/${c.step}`, "checkpoint"),
        data,
        worker,
        preset
      }))
    }
    const steps = mine.map((c) => c.step)
    nodes.push(...routingAnalysisNodes({
      scale: scale.id,
      steps,
      traceStage: (step) => `trace/${scale.id}/${step}`,
      vocabSize: scale.model.vocabSize,
      minOccurrences: preset === "tiny" ? 3 : 10,
      everyCheckpoint: true
    }))
    finals.push([scale.id, steps[steps.length - 1]!])
  }
  nodes.push(...tableAndReport({
    finals,
    nodes,
    title: `FLAME-MoE released models (${preset})`,
    pipeline: "flame-moe-release",
    preset
  }))
  return nodes
}

export default Pipeline.define({
  name: "flame-moe-release",
  description: "import the released FLAME-MoE checkpoints, evaluate, trace and analyse them",
  presets: {
    tiny: "the suite's tiny shapes (checkpoints the tests generate in Megatron's format), bundled corpus",
    full: "the seven released models: --config checkpoints=DIR,... corpus=... tokenizer=... tasks=..."
  },
  defaultPreset: "full",
  preflight: ({ config, executor, preset }) => {
    const paths = dataPathsFor(preset, config)
    const missing = [...missingSettings(paths, { needsGpus: false, executor })]
    const roots = checkpointRoots(config)
    if (roots.length === 0) {
      missing.push(
        "the Megatron checkpoints: --config checkpoints=DIR[,DIR...] (downloaded FLAME-MoE model directories)"
      )
    } else if (missing.length === 0 || paths.tokenizer !== "") {
      const known = fs.existsSync(paths.tokenizer) ? releaseScales(preset, paths.tokenizer) : []
      if (known.length > 0) missing.push(...discoverCheckpoints(roots, known).problems)
    }
    return missing.length === 0 ? Effect.void : Effect.fail(
      new PipelineError({
        pipeline: "flame-moe-release",
        reason: `preset ${preset} cannot run yet; set:\n  - ${missing.join("\n  - ")}`
      })
    )
  },
  build: ({ config, executor, preset }) => build(preset, config, executor)
})
