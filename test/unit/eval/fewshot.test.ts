import { describe, expect, it } from "vitest"
import { EvalSetupError } from "../../../src/eval/errors.ts"
import { FewshotSampler, solvedExample } from "../../../src/eval/fewshot.ts"
import { buildTaskRequests } from "../../../src/eval/requests.ts"
import { arcEasy, hellaswag, piqa, type Task } from "../../../src/eval/tasks.ts"
import { byteEncoder, fixtureDocs } from "./support.ts"

const contexts = (task: Task, n: number, seed: number) =>
  buildTaskRequests(task, fixtureDocs(task, task.evalSplit), fixtureDocs(task, "train"), byteEncoder, {
    seed,
    numFewshot: n
  }).prompts.map((p) => p.fewshotPrefix + (p.doc._tag === "Choices" ? p.doc.query : ""))

describe("few-shot prompt format", () => {
  it("is text + ' ' + target, each followed by a blank line, then the document's text", () => {
    const train = fixtureDocs(arcEasy, "train")
    expect(solvedExample(train[0]!.doc)).toBe(
      "Question: Which tool is best for measuring the length of a pencil?\nAnswer: a ruler"
    )
    const [first] = contexts(arcEasy, 1, 42)
    expect(first).toMatch(
      /^Question: [^\n]+\nAnswer: [^\n]+\n\nQuestion: Which object is attracted to a magnet\?\nAnswer:$/
    )
  })

  it("0-shot tasks consume no randomness and get no prefix", () => {
    const built = buildTaskRequests(hellaswag, fixtureDocs(hellaswag, "validation"), [], byteEncoder, {
      seed: 42,
      numFewshot: 0
    })
    expect(built.prompts.every((p) => p.fewshotPrefix === "")).toBe(true)
  })

  it("fails clearly when the few-shot split is too small", () => {
    const sampler = new FewshotSampler(piqa, fixtureDocs(piqa, "train").slice(0, 10), 42)
    expect(() => sampler.examplesFor(fixtureDocs(piqa, "validation")[0]!, 10)).toThrow(EvalSetupError)
  })
})
