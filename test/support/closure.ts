import type { StageNode } from "../../src/Stage.ts"

/** The nodes `roots` need (themselves and, transitively, every stage whose outputs they read), in the given order. */
export const upstreamClosure = (
  nodes: ReadonlyArray<StageNode>,
  roots: ReadonlyArray<string>
): ReadonlyArray<StageNode> => {
  const byId = new Map(nodes.map((n) => [n.id, n]))
  const needed = new Set<string>()
  const visit = (id: string) => {
    if (needed.has(id)) return
    needed.add(id)
    for (const input of Object.values(byId.get(id)!.inputs)) visit(input.stage)
  }
  roots.forEach(visit)
  return nodes.filter((n) => needed.has(n.id))
}
