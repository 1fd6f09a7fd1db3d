/**
 * The analysis stages' JSON outputs as the routing section reads them: decoded with their Schemas (a
 * document that does not decode names its stage and output), and grouped by scale.
 */
import { Either, Schema } from "effect"
import { ReportError } from "../errors.ts"
import type { ReportData, StageRecord } from "../model.ts"
import { recordsOfKind } from "../model.ts"

export interface Analysed<D> {
  readonly record: StageRecord
  readonly doc: D
}

const documentOf = <A, I>(record: StageRecord, output: string, schema: Schema.Schema<A, I>): A => {
  const decoded = Schema.decodeUnknownEither(schema)(record.documents[output])
  if (Either.isLeft(decoded)) {
    throw new ReportError({ where: `${record.stageId} output ${output}`, reason: decoded.left.message })
  }
  return decoded.right
}

export const analyses = <A, I>(
  data: ReportData,
  kind: string,
  output: string,
  schema: Schema.Schema<A, I>
): Array<Analysed<A>> =>
  recordsOfKind(data, kind).map((record) => ({ record, doc: documentOf(record, output, schema) }))

/** Each scale's documents in step order, scales in the order they first appear. */
export const byScale = <D extends { readonly scale: string; readonly step: number }>(
  docs: ReadonlyArray<Analysed<D>>
): Array<readonly [string, Array<Analysed<D>>]> => {
  const groups = new Map<string, Array<Analysed<D>>>()
  for (const d of docs) {
    const list = groups.get(d.doc.scale)
    if (list) list.push(d)
    else groups.set(d.doc.scale, [d])
  }
  return [...groups].map(([scale, list]) => [scale, list.sort((a, b) => a.doc.step - b.doc.step)] as const)
}

/** Each scale's final (highest-step) document. */
export const finalPerScale = <D extends { readonly scale: string; readonly step: number }>(
  docs: ReadonlyArray<Analysed<D>>
): Array<Analysed<D>> => byScale(docs).map(([, list]) => list[list.length - 1]!)
