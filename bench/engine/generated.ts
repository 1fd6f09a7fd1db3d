/**
 * A generated pipeline for the engine benchmark: a layered DAG of N trivial stages, each writing a
 * tiny file, with a seeded fan-in of 1-3 upstreams from the few layers before it. The same DAG is
 * also written as a Snakefile, so `snakemake -n` and our `plan` decide over identical graphs.
 *
 * The size comes from the preset ("1k", "10k", "100k") or, for the default preset, from
 * FLAME_BENCH_STAGES; the bundled bench CLI and the in-process runs share this one module.
 */
import { Effect, Schema } from "effect"
import * as fs from "node:fs"
import { StageFailed } from "../../src/domain/Errors.ts"
import * as Pipeline from "../../src/Pipeline.ts"
import { define, node, ref } from "../../src/Stage.ts"

/** Stages per layer: 1k, 10k and 100k stages give 10, 100 and 1,000 layers, so depth grows with size too. */
export const LAYER_WIDTH = 100
/** Extra upstreams come from this many layers back, so edges stay local as in real pipelines. */
const REACH = 4
const SEED = 20_240_611

export const PRESET_SIZES: Readonly<Record<string, number>> = { "1k": 1_000, "10k": 10_000, "100k": 100_000 }

export interface GeneratedStage {
  readonly id: string
  /** Distinct upstream stage ids, the first always from the previous layer. */
  readonly upstream: ReadonlyArray<string>
}

/** mulberry32: deterministic, so the DAG (and so every fingerprint) depends only on N. */
const mulberry32 = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

// '/' nests artifact directories (see stageDir), so no directory holds 100k entries.
const stageId = (layer: number, index: number) => `l${layer}/s${index}`

/** The DAG in topological (declaration) order. */
export const layeredDag = (stages: number, seed = SEED): ReadonlyArray<GeneratedStage> => {
  const next = mulberry32(seed)
  const pick = (n: number) => Math.floor(next() * n)
  const out: Array<GeneratedStage> = []
  const layers = Math.ceil(stages / LAYER_WIDTH)
  const widthOf = (layer: number) => Math.min(LAYER_WIDTH, stages - layer * LAYER_WIDTH)
  for (let layer = 0; layer < layers; layer++) {
    for (let index = 0; index < widthOf(layer); index++) {
      const upstream: Array<string> = []
      if (layer > 0) {
        const fanIn = 1 + pick(3)
        upstream.push(stageId(layer - 1, pick(widthOf(layer - 1))))
        // A few tries for distinct extra upstreams; a duplicate just lowers this stage's fan-in.
        for (let k = 1; k < fanIn; k++) {
          const from = layer - 1 - pick(Math.min(layer, REACH))
          const id = stageId(from, pick(widthOf(from)))
          if (!upstream.includes(id)) upstream.push(id)
        }
      }
      out.push({ id: stageId(layer, index), upstream })
    }
  }
  return out
}

export const OUTPUT = "out.txt"

/** The trivial stage: writes its id and its inputs' ids, so every output is distinct and tiny. */
export const tiny = define({
  kind: "bench/tiny",
  version: "1",
  params: Schema.Struct({ layer: Schema.NonNegativeInt }),
  outputs: () => ({ [OUTPUT]: "file" }),
  result: Schema.Struct({ inputs: Schema.Number }),
  run: (ctx) =>
    Effect.try({
      try: () => {
        const names = Object.keys(ctx.inputs).sort()
        fs.writeFileSync(ctx.output(OUTPUT), `${ctx.stageId} <- ${names.join(",")}\n`)
        return { inputs: names.length }
      },
      catch: (cause) => new StageFailed({ stage: ctx.stageId, reason: String(cause) })
    })
})

export const stageCount = (preset: string): number => {
  const fixed = PRESET_SIZES[preset]
  if (fixed !== undefined) return fixed
  const fromEnv = Number(process.env.FLAME_BENCH_STAGES ?? "1000")
  if (!Number.isInteger(fromEnv) || fromEnv <= 0) {
    throw new Error(`FLAME_BENCH_STAGES must be a positive integer, got '${process.env.FLAME_BENCH_STAGES}'`)
  }
  return fromEnv
}

export default Pipeline.define({
  name: "generated",
  description: "a layered DAG of N trivial stages, for the engine benchmark",
  presets: {
    default: "FLAME_BENCH_STAGES stages (1,000 when unset)",
    "1k": "1,000 stages",
    "10k": "10,000 stages",
    "100k": "100,000 stages"
  },
  defaultPreset: "default",
  build: ({ preset }) =>
    layeredDag(stageCount(preset)).map((stage) =>
      node(tiny, {
        id: stage.id,
        params: { layer: Number(stage.id.slice(1, stage.id.indexOf("/"))) },
        inputs: Object.fromEntries(stage.upstream.map((up, i) => [`in${i}`, ref(up, OUTPUT)]))
      })
    )
})

/**
 * The same DAG for Snakemake, written the idiomatic way: the edges as a Python dict and one
 * wildcard rule whose input function looks them up. `all` asks for the sinks, which pull in every
 * stage. Outputs live at out/<stage id>.txt, relative to the Snakemake working directory.
 */
export const snakefile = (dag: ReadonlyArray<GeneratedStage>): string => {
  const consumed = new Set(dag.flatMap((s) => s.upstream))
  const sinks = dag.filter((s) => !consumed.has(s.id)).map((s) => s.id)
  const edges = dag.map((s) => `    ${JSON.stringify(s.id)}: ${JSON.stringify(s.upstream)},`)
  return [
    "# Generated by bench/engine/generated.ts; the same DAG as the 'generated' pipeline.",
    "EDGES = {",
    ...edges,
    "}",
    `SINKS = ${JSON.stringify(sinks)}`,
    "",
    "rule all:",
    "    input: expand(\"out/{id}.txt\", id=SINKS)",
    "",
    "rule stage:",
    "    input: lambda wc: [\"out/%s.txt\" % up for up in EDGES[wc.id]]",
    "    output: \"out/{id}.txt\"",
    "    shell: \"echo {wildcards.id} > {output}\"",
    ""
  ].join("\n")
}

/** Output paths in topological order, for creating a Snakemake workspace where everything is up to date. */
export const snakemakeOutputs = (dag: ReadonlyArray<GeneratedStage>): ReadonlyArray<string> =>
  dag.map((s) => `out/${s.id}.txt`)
