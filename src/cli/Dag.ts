/**
 * `flame-pipe dag`: the resolved pipeline as a Mermaid flowchart or a Graphviz digraph.
 */
import type { ResolvedPipeline } from "../Pipeline.ts"

const quote = (s: string) => `"${s.replace(/"/g, "\\\"")}"`

export const toMermaid = (pipeline: ResolvedPipeline): string => {
  const ids = new Map(pipeline.stages.map((s, i) => [s.id, `s${i}`]))
  const lines = ["flowchart LR"]
  for (const stage of pipeline.stages) lines.push(`  ${ids.get(stage.id)}[${quote(stage.id)}]`)
  for (const stage of pipeline.stages) {
    for (const [name, input] of Object.entries(stage.inputs)) {
      lines.push(`  ${ids.get(input.stage)} -->|${quote(`${input.output} as ${name}`)}| ${ids.get(stage.id)}`)
    }
  }
  return lines.join("\n")
}

export const toDot = (pipeline: ResolvedPipeline): string => {
  const lines = [`digraph ${quote(pipeline.name)} {`, "  rankdir=LR;", "  node [shape=box];"]
  for (const stage of pipeline.stages) lines.push(`  ${quote(stage.id)} [tooltip=${quote(stage.definition.kind)}];`)
  for (const stage of pipeline.stages) {
    for (const [name, input] of Object.entries(stage.inputs)) {
      lines.push(`  ${quote(input.stage)} -> ${quote(stage.id)} [label=${quote(`${input.output} as ${name}`)}];`)
    }
  }
  lines.push("}")
  return lines.join("\n")
}
