/**
 * Evaluation, split in two so the tokenization of prompts happens once:
 * - eval/requests: the six harness tasks' log-likelihood requests (few-shot prompts built and
 *   encoded by lm-evaluation-harness's rules, src/eval), shared by every checkpoint;
 * - eval/<scale>/<step>: one checkpoint's validation loss on the held-out DCLM split and its
 *   log-likelihoods for those requests (the worker), scored as acc / acc_norm (src/eval/scoring.ts).
 */
import { Effect, Either, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { StageFailed } from "../src/domain/Errors.ts"
import type { TaskRequests } from "../src/eval/requests.ts"
import { buildTaskRequests } from "../src/eval/requests.ts"
import { TaskName } from "../src/eval/schema.ts"
import { scoreTask } from "../src/eval/scoring.ts"
import { readTaskSplits } from "../src/eval/taskDocs.ts"
import { flameFewshotSeed, flameTasks, taskByName } from "../src/eval/tasks.ts"
import { define } from "../src/Stage.ts"
import { loadTokenizer } from "../src/tokenize/Tokenizer.ts"
import { runWorker } from "../src/worker/runWorker.ts"
import {
  settleWorkerStage,
  workerBinary,
  workerDataConfig,
  workerStageFields,
  workerStageResources,
  writeWorkerConfig
} from "./flame/model.ts"
import { withWorkerCheckpoint } from "./importMegatron.ts"

const failed = (stage: string) => (error: unknown) =>
  new StageFailed({ stage, reason: error instanceof Error ? error.message : String(error) })

const TaskSetting = Schema.Struct({ task: TaskName, numFewshot: Schema.Int.pipe(Schema.nonNegative()) })

/** FLAME-MoE's evaluation (scripts/evaluate.sh): 0-shot openbookqa, winogrande; 10-shot the rest. */
export const flameTaskSettings = flameTasks.map((t) => ({ task: t.name, numFewshot: t.numFewshot }))

export const evalRequests = define({
  kind: "eval/requests",
  version: "1",
  params: Schema.Struct({
    tasks: Schema.optionalWith(Schema.Array(TaskSetting), { default: () => flameTaskSettings }),
    seed: Schema.optionalWith(Schema.Int, { default: () => flameFewshotSeed }),
    /** Score only the first N documents of each task (lm-eval's --limit); few-shot examples still come from all. */
    limit: Schema.optional(Schema.Int.pipe(Schema.positive()))
  }),
  /** A directory with the worker's requests.jsonl and, for scoring, tasks.json (prompts, golds, request order). */
  outputs: () => ({ requests: "dir" }),
  result: Schema.Struct({
    requests: Schema.Number,
    documents: Schema.Record({ key: Schema.String, value: Schema.Number })
  }),
  reproducibility: { _tag: "bitwise" },
  run: (ctx) =>
    Effect.gen(function*() {
      const tokenizer = yield* loadTokenizer(ctx.inputs.tokenizer!).pipe(Effect.mapError(failed(ctx.stageId)))
      const encoder = { encode: (text: string) => tokenizer.encode(text), eodId: tokenizer.eodId }
      const built: Array<TaskRequests> = []
      for (const setting of ctx.params.tasks) {
        const task = taskByName(setting.task)
        const splits = yield* readTaskSplits(task, ctx.inputs.tasks!, setting.numFewshot).pipe(
          Effect.mapError(failed(ctx.stageId))
        )
        built.push(
          yield* Effect.try({
            try: () =>
              buildTaskRequests(
                task,
                ctx.params.limit ? splits.evalDocs.slice(0, ctx.params.limit) : splits.evalDocs,
                splits.fewshotDocs,
                encoder,
                {
                  seed: ctx.params.seed,
                  numFewshot: setting.numFewshot
                }
              ),
            catch: failed(ctx.stageId)
          })
        )
      }
      const lines = built.flatMap((t) =>
        t.requests.map((r, i) =>
          JSON.stringify({ id: `${t.task}/${i}`, context: r.contextTokens, continuation: r.continuationTokens })
        )
      )
      const dir = ctx.output("requests")
      fs.mkdirSync(dir, { recursive: true })
      fs.writeFileSync(path.join(dir, "requests.jsonl"), lines.join("\n") + "\n")
      fs.writeFileSync(path.join(dir, "tasks.json"), JSON.stringify(built))
      return {
        requests: lines.length,
        documents: Object.fromEntries(built.map((t) => [t.task, t.prompts.length]))
      }
    })
})

const Metric = Schema.Struct({ value: Schema.Number, stderr: Schema.NullOr(Schema.Number) })

export const EvalResult = Schema.Struct({
  scale: Schema.String,
  step: Schema.Number,
  validationLoss: Schema.Number,
  validationPerplexity: Schema.Number,
  tasks: Schema.Record({
    key: Schema.String,
    value: Schema.Struct({
      numFewshot: Schema.Number,
      numDocs: Schema.Number,
      acc: Metric,
      accNorm: Schema.optional(Metric)
    })
  })
})
export type EvalResult = typeof EvalResult.Type

export const evaluate = define({
  kind: "eval",
  version: "1",
  params: Schema.Struct({
    scale: Schema.String,
    step: Schema.Int,
    /** Held-out sequences for the validation loss. */
    valSamples: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 64 }),
    ...workerStageFields
  }),
  settle: settleWorkerStage,
  outputs: () => ({ "eval.json": "file" }),
  result: EvalResult,
  resources: workerStageResources,
  // CPU: deterministic worker and scoring, byte-identical eval.json. GPU (bf16 log-likelihoods): the
  // validation loss within 0.01 nats and each task's accuracy within one point.
  reproducibility: (p) =>
    p.backend === "cpu" ? { _tag: "bitwise" } : {
      _tag: "tolerance",
      metrics: { validationLoss: 0.01, "tasks.*.acc.value": 0.01, "tasks.*.accNorm.value": 0.01 }
    },
  run: (ctx) =>
    Effect.gen(function*() {
      const p = ctx.params
      const requestsDir = ctx.inputs.requests!
      const output = path.join(ctx.workDir, "loglikelihood.jsonl")
      const config = yield* writeWorkerConfig(ctx, "eval.json.config", {
        model: p.model,
        data: yield* workerDataConfig(ctx, p.data),
        eval: {
          valSamples: p.valSamples,
          split: "valid",
          requests: path.join(requestsDir, "requests.jsonl"),
          output
        },
        runtime: { threads: ctx.cpus, outputDir: ctx.workDir, backend: p.backend }
      })
      const worker = (yield* withWorkerCheckpoint(ctx, (checkpoint) =>
        runWorker(ctx, {
          file: workerBinary(ctx),
          args: ["eval", "--config", config, "--checkpoint", checkpoint]
        }))) as { loss?: number; perplexity?: number }
      const scored = yield* Effect.try({
        try: () => {
          const logprobs = new Map<string, number>()
          for (const line of fs.readFileSync(output, "utf8").split("\n")) {
            if (line === "") continue
            const r = JSON.parse(line) as { id: string; logprob: number }
            logprobs.set(r.id, r.logprob)
          }
          const built = JSON.parse(fs.readFileSync(path.join(requestsDir, "tasks.json"), "utf8")) as Array<TaskRequests>
          return built.map((t) => {
            const lls = t.requests.map((_, i) => logprobs.get(`${t.task}/${i}`)!)
            return Either.getOrThrow(scoreTask(taskByName(t.task), t, lls))
          })
        },
        catch: failed(ctx.stageId)
      })
      const result: EvalResult = {
        scale: p.scale,
        step: p.step,
        validationLoss: worker.loss ?? Number.NaN,
        validationPerplexity: worker.perplexity ?? Number.NaN,
        tasks: Object.fromEntries(scored.map((r) => [r.task, {
          numFewshot: r.numFewshot,
          numDocs: r.numDocs,
          acc: r.acc,
          ...(r.accNorm ? { accNorm: r.accNorm } : {})
        }]))
      }
      yield* ctx.metric("validation_loss", p.step, result.validationLoss)
      for (const r of scored) {
        yield* ctx.metric(`${r.task}/acc`, p.step, r.acc.value)
        if (r.accNorm) yield* ctx.metric(`${r.task}/acc_norm`, p.step, r.accNorm.value)
      }
      fs.writeFileSync(ctx.output("eval.json"), JSON.stringify({ ...result, docs: scored }, null, 2) + "\n")
      return result
    })
})
