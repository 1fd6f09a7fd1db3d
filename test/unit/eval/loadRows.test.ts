import { it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { join } from "node:path"
import { describe, expect } from "vitest"
import type { BadRowError } from "../../../src/eval/errors.ts"
import { TaskFileError } from "../../../src/eval/errors.ts"
import { evaluateTask } from "../../../src/eval/evaluate.ts"
import { parseTaskDocs, readTaskDocs, readTaskSplits } from "../../../src/eval/taskDocs.ts"
import { arcEasy, flameTasks, hellaswag, openBookQa, piqa, type Task, winogrande } from "../../../src/eval/tasks.ts"
import { byteEncoder, fixtureRoot } from "./support.ts"

const badRow = (task: Task, text: string): BadRowError => {
  const result = parseTaskDocs(task, text, "data/x.jsonl")
  if (Either.isRight(result)) throw new Error("expected the file to be rejected")
  return result.left
}

const arcRow = {
  id: "q1",
  question: "Why?",
  choices: { text: ["because", "no"], label: ["A", "B"] },
  answerKey: "A"
}
const line = (value: unknown) => JSON.stringify(value)

describe("bad rows name file, line and key", () => {
  it("a missing field", () => {
    const { answerKey: _, ...noKey } = arcRow
    const e = badRow(arcEasy, `${line(arcRow)}\n${line(noKey)}\n`)
    expect(e).toMatchObject({ file: "data/x.jsonl", line: 2, key: "answerKey" })
    expect(e.message).toMatch(/^data\/x\.jsonl:2: answerKey: /)
  })

  it("a mistyped nested field, with its index", () => {
    const e = badRow(arcEasy, line({ ...arcRow, choices: { text: ["a", "b"], label: ["A", 2] } }))
    expect(e).toMatchObject({ line: 1, key: "choices.label.1" })
  })

  it("an answer that is not among the labels", () => {
    expect(badRow(arcEasy, line({ ...arcRow, answerKey: "E" }))).toMatchObject({ key: "answerKey" })
    expect(badRow(arcEasy, line({ ...arcRow, choices: { text: ["a"], label: ["A", "B"] } }))).toMatchObject({
      key: "choices.label"
    })
  })

  it("dataset-specific checks", () => {
    const wino = { sentence: "A _ B", option1: "x", option2: "y", answer: "1" }
    expect(badRow(winogrande, line({ ...wino, sentence: "no blank" }))).toMatchObject({ key: "sentence" })
    expect(badRow(winogrande, line({ ...wino, answer: "3" }))).toMatchObject({ key: "answer" })
    expect(badRow(piqa, line({ goal: "g", sol1: "a", sol2: "b", label: "0" }))).toMatchObject({ key: "label" })
    const hs = {
      ind: 1,
      activity_label: "a",
      ctx_a: "b",
      ctx_b: "c",
      ctx: "b c",
      endings: ["x", "y"],
      source_id: "s",
      split: "val",
      split_type: "indomain",
      label: "1"
    }
    // HellaSwag labels are strings in the Hub dataset; an int is a layout error.
    expect(badRow(hellaswag, line({ ...hs, label: 1 }))).toMatchObject({ key: "label" })
    expect(badRow(hellaswag, line({ ...hs, label: "2" }))).toMatchObject({ key: "label" })
    expect(badRow(openBookQa, line({ ...arcRow }))).toMatchObject({ key: "question_stem" })
  })

  it("malformed JSON and non-objects name the line only", () => {
    const e = badRow(arcEasy, `${line(arcRow)}\n\n{"id": \n`)
    expect(e.line).toBe(3)
    expect(e.key).toBeUndefined()
    expect(badRow(arcEasy, "[1, 2]")).toMatchObject({ line: 1, reason: "not a JSON object" })
  })
})

describe("reading task files", () => {
  it.effect("reads every fixture split, 12 rows each", () =>
    Effect.gen(function*() {
      for (const task of flameTasks) {
        const splits = yield* readTaskSplits(task, fixtureRoot)
        expect(splits.evalDocs, task.name).toHaveLength(12)
        expect(splits.fewshotDocs, task.name).toHaveLength(task.numFewshot > 0 ? 12 : 0)
      }
    }))

  it.effect("fails with TaskFileError on a missing file", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(readTaskDocs(arcEasy, join(fixtureRoot, "nope.jsonl")))
      expect(error).toBeInstanceOf(TaskFileError)
    }))

  it.effect("evaluates a task end to end with a stub model that prefers short continuations", () =>
    Effect.gen(function*() {
      const result = yield* evaluateTask(
        piqa,
        { dataRoot: fixtureRoot, encoder: byteEncoder },
        (requests) => Effect.succeed(requests.map((r) => -r.continuationTokens.length))
      )

      expect(result.task).toBe("piqa")
      expect(result.numFewshot).toBe(10)
      expect(result.numDocs).toBe(12)
      // acc picks the solution with fewer bytes. In the fixture only row 10 (line 10: "Wrap it in plastic
      // wrap." 24 bytes vs "Leave it on a sunny ledge." 26, gold 0) has the shorter solution right.
      expect(result.docs.map((d) => d.acc).join("")).toBe("000000000100")
      expect(result.acc.value).toBeCloseTo(1 / 12, 12)
    }))

  it.effect("surfaces file errors from the pipeline", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        evaluateTask(
          arcEasy,
          { dataRoot: join(fixtureRoot, "missing"), encoder: byteEncoder },
          () => Effect.succeed([])
        )
      )

      expect(error).toBeInstanceOf(TaskFileError)
    }))
})
