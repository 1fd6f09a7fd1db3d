import { execFileSync } from "node:child_process"
import { beforeAll, describe, expect, it } from "vitest"
import { FewshotSampler } from "../../../src/eval/fewshot.ts"
import { buildTaskRequests } from "../../../src/eval/requests.ts"
import { arcEasy, piqa, type Task } from "../../../src/eval/tasks.ts"
import { byteEncoder, fixtureDocs, fixtureRoot } from "../../unit/eval/support.ts"

// Independent oracle: CPython's random plus the harness's few-shot rules, written out in Python.
// For each task: the train-row indices chosen per evaluated document and the full contexts.
const oracleScript = `
import json, random, sys
root = sys.argv[1]
def rows(task, split):
    with open(f"{root}/{task}/{split}.jsonl") as f:
        return [json.loads(l) for l in f if l.strip()]
def arc_text(r): return "Question: " + r["question"] + "\\nAnswer:"
def arc_target(r): return r["choices"]["text"][r["choices"]["label"].index(r["answerKey"])]
def piqa_text(r): return "Question: " + r["goal"] + "\\nAnswer:"
def piqa_target(r): return [r["sol1"], r["sol2"]][r["label"]]
def run(task, text, target, n, extra, seed=42):
    train, evals = rows(task, "train"), rows(task, "test" if task.startswith("arc") else "validation")
    rnd = random.Random(seed)  # one generator for the whole task
    chosen, contexts = [], []
    for doc in evals:
        picked = rnd.sample(range(len(train)), n + 1 if extra else n)
        picked = [i for i in picked if train[i] != doc][:n]
        chosen.append(picked)
        contexts.append("".join(text(train[i]) + " " + target(train[i]) + "\\n\\n" for i in picked) + text(doc))
    return {"chosen": chosen, "contexts": contexts}
def same_split(seed=42):
    # PIQA drawing from its own evaluated split: sample 3, drop the evaluated doc, keep 2.
    val = rows("piqa", "validation")
    rnd = random.Random(seed)
    out = []
    for j, doc in enumerate(val):
        picked = rnd.sample(range(len(val)), 3)
        out.append([i for i in picked if val[i] != doc][:2])
    return out
print(json.dumps({
    "arc_easy": run("arc_easy", arc_text, arc_target, 10, False),
    "piqa": run("piqa", piqa_text, piqa_target, 10, True),
    "piqa_as_if_no_extra": run("piqa", piqa_text, piqa_target, 10, False),
    "arc_easy_seed_7_three_shot": run("arc_easy", arc_text, arc_target, 3, False, 7),
    "same_split": same_split(),
}))
`

interface Run {
  readonly chosen: Array<Array<number>>
  readonly contexts: Array<string>
}
interface Oracle {
  readonly arc_easy: Run
  readonly piqa: Run
  readonly piqa_as_if_no_extra: Run
  readonly arc_easy_seed_7_three_shot: Run
  readonly same_split: Array<Array<number>>
}
let oracle: Oracle

beforeAll(() => {
  oracle = JSON.parse(execFileSync("python3", ["-c", oracleScript, fixtureRoot], { encoding: "utf8" })) as Oracle
})

/** Indices (0-based rows of the train file) of the examples chosen for each evaluated document. */
const chosenRows = (task: Task, n: number, seed: number, evalSplit = task.evalSplit, fewshotSplit = "train") => {
  const pool = fixtureDocs(task, fewshotSplit)
  const sampler = new FewshotSampler(task, pool, seed)
  return fixtureDocs(task, evalSplit).map((d) => sampler.examplesFor(d, n).map((ex) => pool.indexOf(ex)))
}

const contexts = (task: Task, n: number, seed: number) =>
  buildTaskRequests(task, fixtureDocs(task, task.evalSplit), fixtureDocs(task, "train"), byteEncoder, {
    seed,
    numFewshot: n
  }).prompts.map((p) => p.fewshotPrefix + (p.doc._tag === "Choices" ? p.doc.query : ""))

describe("few-shot selection against CPython", () => {
  it("ARC-Easy 10-shot, seed 42: same examples and contexts, one generator across documents", () => {
    expect(chosenRows(arcEasy, 10, 42)).toEqual(oracle.arc_easy.chosen)
    expect(contexts(arcEasy, 10, 42)).toEqual(oracle.arc_easy.contexts)
    // Documents get different example orders: the generator is not re-seeded per document.
    expect(oracle.arc_easy.chosen[0]).not.toEqual(oracle.arc_easy.chosen[1])
  })

  it("another seed and shot count", () => {
    expect(contexts(arcEasy, 3, 7)).toEqual(oracle.arc_easy_seed_7_three_shot.contexts)
  })

  it("PIQA draws n + 1 (no test split in its config), which changes later documents", () => {
    expect(chosenRows(piqa, 10, 42)).toEqual(oracle.piqa.chosen)
    expect(contexts(piqa, 10, 42)).toEqual(oracle.piqa.contexts)
    // Same first document either way (first 10 of 11 = the 10), different from the second one on.
    expect(oracle.piqa.chosen[0]).toEqual(oracle.piqa_as_if_no_extra.chosen[0])
    expect(oracle.piqa.chosen[1]).not.toEqual(oracle.piqa_as_if_no_extra.chosen[1])
  })

  it("drops the evaluated document when it is drawn from its own split", () => {
    const got = chosenRows(piqa, 2, 42, "validation", "validation")
    expect(got).toEqual(oracle.same_split)
    got.forEach((picked, j) => expect(picked).not.toContain(j))
  })
})
