/**
 * Domain types of the evaluation: the rows of each dataset as `datasets.Dataset.to_json` writes them (one
 * JSON object per line, the Hub dataset's own field names), the task names, and the typed results.
 */
import { Schema } from "effect"

const Choices = Schema.Struct({
  text: Schema.Array(Schema.String),
  label: Schema.Array(Schema.String)
})

/** allenai/ai2_arc (ARC-Easy and ARC-Challenge). */
export const ArcRow = Schema.Struct({
  id: Schema.String,
  question: Schema.String,
  choices: Choices,
  answerKey: Schema.String
})
export type ArcRow = typeof ArcRow.Type

/** openbookqa, configuration "main". */
export const OpenBookQaRow = Schema.Struct({
  id: Schema.String,
  question_stem: Schema.String,
  choices: Choices,
  answerKey: Schema.String
})
export type OpenBookQaRow = typeof OpenBookQaRow.Type

/** piqa: two solutions to a goal; label is the index of the right one. */
export const PiqaRow = Schema.Struct({
  goal: Schema.String,
  sol1: Schema.String,
  sol2: Schema.String,
  label: Schema.Literal(0, 1)
})
export type PiqaRow = typeof PiqaRow.Type

/** hellaswag (Rowan/hellaswag): note `label` is a string ("0".."3") in the Hub dataset. */
export const HellaSwagRow = Schema.Struct({
  ind: Schema.Int,
  activity_label: Schema.String,
  ctx_a: Schema.String,
  ctx_b: Schema.String,
  ctx: Schema.String,
  endings: Schema.Array(Schema.String),
  source_id: Schema.String,
  split: Schema.String,
  split_type: Schema.String,
  label: Schema.String.pipe(Schema.pattern(/^\d+$/, { message: () => "expected a decimal index string" }))
})
export type HellaSwagRow = typeof HellaSwagRow.Type

/** winogrande (winogrande_xl etc.): a sentence with one "_" and the two options that can fill it. */
export const WinoGrandeRow = Schema.Struct({
  sentence: Schema.String,
  option1: Schema.String,
  option2: Schema.String,
  answer: Schema.Literal("1", "2")
})
export type WinoGrandeRow = typeof WinoGrandeRow.Type

export const TaskName = Schema.Literal("arc_easy", "arc_challenge", "openbookqa", "piqa", "hellaswag", "winogrande")
export type TaskName = typeof TaskName.Type

export const SplitName = Schema.Literal("train", "validation", "test")
export type SplitName = typeof SplitName.Type

export const MetricName = Schema.Literal("acc", "acc_norm")
export type MetricName = typeof MetricName.Type

/** A metric aggregated over a task's documents: the mean and the standard error of the mean. */
export const MetricValue = Schema.Struct({
  value: Schema.Number,
  /** sample standard deviation / sqrt(n); null with fewer than two documents (the harness prints "N/A"). */
  stderr: Schema.NullOr(Schema.Number)
})
export type MetricValue = typeof MetricValue.Type

/** Per-document outcome, kept so a result can be audited like the harness's --log_samples. */
export const DocScore = Schema.Struct({
  docIndex: Schema.Int,
  gold: Schema.Int,
  loglikelihoods: Schema.Array(Schema.Number),
  acc: Schema.Literal(0, 1),
  accNorm: Schema.Literal(0, 1)
})
export type DocScore = typeof DocScore.Type

export class TaskResult extends Schema.Class<TaskResult>("TaskResult")({
  task: TaskName,
  numFewshot: Schema.Int,
  numDocs: Schema.Int,
  acc: MetricValue,
  /** Absent for WinoGrande, whose harness task reports acc only. */
  accNorm: Schema.optional(MetricValue),
  docs: Schema.Array(DocScore)
}) {}
