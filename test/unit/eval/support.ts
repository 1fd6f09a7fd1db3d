/** Helpers shared by the evaluation tests: fixture loading and fake encoders. */
import { Either } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import type { Encoder } from "../../../src/eval/encoding.ts"
import { parseTaskDocs, type TaskDoc } from "../../../src/eval/taskDocs.ts"
import type { Task } from "../../../src/eval/tasks.ts"

export const fixtureRoot = join(import.meta.dirname, "../../../fixtures/eval")

export const fixtureDocs = (task: Task, split: string): ReadonlyArray<TaskDoc> => {
  const file = join(fixtureRoot, task.name, `${split}.jsonl`)
  return Either.getOrThrow(parseTaskDocs(task, readFileSync(file, "utf8"), file))
}

/** One token per UTF-8 byte; id 256 is end-of-document. */
export const byteEncoder: Encoder = {
  encode: (text) => new TextEncoder().encode(text),
  eodId: 256
}

/**
 * A GPT-2-like word encoder: a token is an optional single leading space plus a run of non-space
 * characters, or a run of whitespace. Ids are assigned on first sight, so they are deterministic per
 * instance. Like byte-level BPE, " Paris" is one token but "Answer: " ends in a lone space token.
 */
export const wordEncoder = (): Encoder & { readonly vocab: Map<string, number> } => {
  const vocab = new Map<string, number>()
  const id = (piece: string) => {
    let v = vocab.get(piece)
    if (v === undefined) {
      v = vocab.size + 1
      vocab.set(piece, v)
    }
    return v
  }
  return {
    vocab,
    eodId: 0,
    encode: (text) => (text.match(/ ?[^\s]+|\s+(?!\S)|\s/g) ?? []).map(id)
  }
}
