/**
 * The six FLAME-MoE evaluation tasks, with doc_to_text / doc_to_choice / doc_to_target as
 * lm-evaluation-harness (v0.4) defines them in its task YAMLs and utils. Each task turns a validated row into
 * an `McDoc`, the only shape the rest of the evaluation sees:
 *
 * - `Choices`: one context (the prompt), one continuation per choice (" " + choice); ARC, OpenBookQA, PIQA,
 *   HellaSwag.
 * - `MultipleInput`: one context per choice and a shared continuation; WinoGrande's partial scoring.
 */
import { Either } from "effect"
import type { Schema } from "effect"
import { BadRowError } from "./errors.ts"
import { decodeRow } from "./loadRows.ts"
import { pyCapitalize, pyLstrip, pyStrip } from "./pythonString.ts"
import { ArcRow, HellaSwagRow, OpenBookQaRow, PiqaRow, type SplitName, type TaskName, WinoGrandeRow } from "./schema.ts"
import type { MetricName } from "./schema.ts"

export interface ChoicesDoc {
  readonly _tag: "Choices"
  readonly query: string
  readonly choices: ReadonlyArray<string>
  readonly gold: number
}

export interface MultipleInputDoc {
  readonly _tag: "MultipleInput"
  /** doc_to_choice: the contexts, one per option. */
  readonly contexts: ReadonlyArray<string>
  /** doc_to_target: the continuation shared by all contexts. */
  readonly target: string
  readonly gold: number
}

export type McDoc = ChoicesDoc | MultipleInputDoc

/** A row that decodes but cannot be used (e.g. its answer is not among its labels). */
export interface RowProblem {
  readonly key: string
  readonly reason: string
}

/** A task as written below: typed by its row. `defineTask` erases the row type behind `decodeDoc`. */
export interface TaskSpec<Row> {
  readonly name: TaskName
  /** The Hub dataset (and configuration) whose JSON-lines layout the task files use. */
  readonly dataset: string
  readonly rowSchema: Schema.Schema<Row>
  /** The split documents are scored on: test where the harness config defines one, else validation. */
  readonly evalSplit: SplitName
  /** Few-shot examples come from the train split (the harness's fallback when fewshot_split is unset). */
  readonly fewshotSplit: SplitName
  /**
   * `test_split` of the harness's YAML (null when absent). The harness's sampler draws one extra example
   * when the config's fewshot_split (null for all six tasks) equals test_split: so for PIQA and HellaSwag,
   * which define no test split, it samples n + 1 and keeps the first n that are not the evaluated document.
   * That changes the random stream for later documents, so we reproduce the comparison, not its intent.
   */
  readonly harnessTestSplit: SplitName | null
  readonly numFewshot: number
  readonly metrics: ReadonlyArray<MetricName>
  readonly toDoc: (row: Row) => Either.Either<McDoc, RowProblem>
}

export interface Task extends Omit<TaskSpec<never>, "rowSchema" | "toDoc"> {
  /** Validates one JSON value of a task file and turns it into the harness's document. */
  readonly decodeDoc: (value: unknown, file: string, line: number) => Either.Either<McDoc, BadRowError>
}

export const defineTask = <Row>({ rowSchema, toDoc, ...rest }: TaskSpec<Row>): Task => ({
  ...rest,
  decodeDoc: (value, file, line) =>
    Either.flatMap(
      decodeRow(rowSchema, value, file, line),
      (row) => Either.mapLeft(toDoc(row), ({ key, reason }) => new BadRowError({ file, line, key, reason }))
    )
})

const problem = (key: string, reason: string) => Either.left<RowProblem>({ key, reason })

/** choices.label.index(answerKey): the gold index of ARC and OpenBookQA rows. */
const labelIndex = (
  choices: { readonly text: ReadonlyArray<string>; readonly label: ReadonlyArray<string> },
  answerKey: string
): Either.Either<number, RowProblem> => {
  if (choices.text.length !== choices.label.length) {
    return problem("choices.label", `${choices.label.length} labels for ${choices.text.length} choices`)
  }
  if (choices.text.length === 0) return problem("choices.text", "no choices")
  const gold = choices.label.indexOf(answerKey)
  if (gold < 0) return problem("answerKey", `${JSON.stringify(answerKey)} is not one of the labels`)
  return Either.right(gold)
}

const arcTask = (name: "arc_easy" | "arc_challenge", config: string): Task =>
  defineTask<ArcRow>({
    name,
    dataset: `allenai/ai2_arc (${config})`,
    rowSchema: ArcRow,
    evalSplit: "test",
    fewshotSplit: "train",
    harnessTestSplit: "test",
    numFewshot: 10,
    metrics: ["acc", "acc_norm"],
    toDoc: (row) =>
      Either.map(labelIndex(row.choices, row.answerKey), (gold) => ({
        _tag: "Choices",
        query: `Question: ${row.question}\nAnswer:`,
        choices: row.choices.text,
        gold
      }))
  })

export const arcEasy = arcTask("arc_easy", "ARC-Easy")
export const arcChallenge = arcTask("arc_challenge", "ARC-Challenge")

export const openBookQa: Task = defineTask<OpenBookQaRow>({
  name: "openbookqa",
  dataset: "openbookqa (main)",
  rowSchema: OpenBookQaRow,
  evalSplit: "test",
  fewshotSplit: "train",
  harnessTestSplit: "test",
  numFewshot: 0,
  metrics: ["acc", "acc_norm"],
  toDoc: (row) =>
    // The YAML strips leading whitespace of answerKey: choices.label.index(answerKey.lstrip()).
    Either.map(labelIndex(row.choices, pyLstrip(row.answerKey)), (gold) => ({
      _tag: "Choices",
      query: row.question_stem,
      choices: row.choices.text,
      gold
    }))
})

export const piqa: Task = defineTask<PiqaRow>({
  name: "piqa",
  dataset: "piqa",
  rowSchema: PiqaRow,
  evalSplit: "validation",
  fewshotSplit: "train",
  harnessTestSplit: null,
  numFewshot: 10,
  metrics: ["acc", "acc_norm"],
  toDoc: (row) =>
    Either.right({
      _tag: "Choices",
      query: `Question: ${row.goal}\nAnswer:`,
      choices: [row.sol1, row.sol2],
      gold: row.label
    })
})

/**
 * The harness's HellaSwag `preprocess`: strip, " [title]" -> ". ", drop "[...]" spans (shortest match, not
 * across a newline: Python's `.`), then collapse double spaces once (a single left-to-right pass, so three
 * spaces become two, as str.replace does).
 */
export const hellaswagPreprocess = (text: string): string =>
  pyStrip(text).split(" [title]").join(". ").replace(/\[[^\n]*?\]/g, "").split("  ").join(" ")

export const hellaswag: Task = defineTask<HellaSwagRow>({
  name: "hellaswag",
  dataset: "hellaswag",
  rowSchema: HellaSwagRow,
  evalSplit: "validation",
  fewshotSplit: "train",
  harnessTestSplit: null,
  numFewshot: 10,
  metrics: ["acc", "acc_norm"],
  toDoc: (row) => {
    const gold = Number(row.label)
    if (row.endings.length === 0) return problem("endings", "no endings")
    if (gold >= row.endings.length) {
      return problem("label", `${row.label} is not an index into ${row.endings.length} endings`)
    }
    // ctx_b.capitalize() lower-cases everything after the first character, as Python does.
    const ctx = `${row.ctx_a} ${pyCapitalize(row.ctx_b)}`
    return Either.right({
      _tag: "Choices",
      query: hellaswagPreprocess(`${row.activity_label}: ${ctx}`),
      choices: row.endings.map(hellaswagPreprocess),
      gold
    })
  }
})

export const winogrande: Task = defineTask<WinoGrandeRow>({
  name: "winogrande",
  dataset: "winogrande (winogrande_xl)",
  rowSchema: WinoGrandeRow,
  evalSplit: "validation",
  fewshotSplit: "train",
  harnessTestSplit: null,
  numFewshot: 0,
  // Partial scoring compares different contexts, so length normalisation is meaningless: acc only.
  metrics: ["acc"],
  toDoc: (row) => {
    const blank = row.sentence.indexOf("_")
    if (blank < 0) return problem("sentence", "has no '_' to fill")
    return Either.right({
      _tag: "MultipleInput",
      contexts: [row.option1, row.option2].map((option) => row.sentence.slice(0, blank) + option),
      target: pyStrip(row.sentence.slice(blank + 1)),
      gold: row.answer === "1" ? 0 : 1
    })
  }
})

/** FLAME-MoE's evaluation suite (scripts/evaluate.sh), in its order. */
export const flameTasks: ReadonlyArray<Task> = [openBookQa, winogrande, piqa, arcEasy, arcChallenge, hellaswag]

export const taskByName = (name: TaskName): Task => {
  const task = flameTasks.find((t) => t.name === name)
  if (task === undefined) throw new Error(`unknown task ${name}`)
  return task
}

/** The FLAME-MoE few-shot seed (lm_eval --seed 42 sets the few-shot sampler's seed too). */
export const flameFewshotSeed = 42
