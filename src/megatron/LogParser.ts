/**
 * Megatron-LM's training log, read as it is written: the iteration lines of training.py's
 * training_log (" [time] iteration 10/ 2121 | consumed samples: ... | lm loss: 1.0E+01 | ...") and
 * the validation summaries ("validation loss at iteration 212 | lm loss value: ... |") become
 * metrics, named as the worker names its own so both backends' curves sit side by side.
 */

export interface IterationLine {
  readonly iteration: number
  readonly trainIters: number
  /** Every numeric `key: value` field of the line, by Megatron's key. */
  readonly fields: ReadonlyMap<string, number>
}

const ITERATION = /\biteration\s+(\d+)\s*\/\s*(\d+)\s*\|(.*)$/
const VALIDATION = /validation loss at iteration\s+(\d+)\s*(?:on [^|]*)?\|(.*)$/
const CHECKPOINT_SAVED = /successfully saved checkpoint (?:from|at) iteration\s+(\d+)/
const CHECKPOINT_LOADED = /successfully loaded checkpoint from .* at iteration\s+(\d+)/

const fieldsOf = (rest: string): Map<string, number> => {
  const fields = new Map<string, number>()
  for (const part of rest.split("|")) {
    const colon = part.lastIndexOf(":")
    if (colon < 0) continue
    const key = part.slice(0, colon).trim()
    const value = Number(part.slice(colon + 1).trim())
    if (key !== "" && part.slice(colon + 1).trim() !== "" && Number.isFinite(value)) fields.set(key, value)
  }
  return fields
}

export const parseIterationLine = (line: string): IterationLine | undefined => {
  const match = ITERATION.exec(line)
  if (!match || VALIDATION.test(line)) return undefined
  return { iteration: Number(match[1]), trainIters: Number(match[2]), fields: fieldsOf(match[3]!) }
}

export const parseValidationLine = (line: string): { iteration: number; loss: number } | undefined => {
  const match = VALIDATION.exec(line)
  if (!match) return undefined
  const loss = fieldsOf(match[2]!).get("lm loss value")
  return loss === undefined ? undefined : { iteration: Number(match[1]), loss }
}

export const parseCheckpointSaved = (line: string): number | undefined => {
  const match = CHECKPOINT_SAVED.exec(line)
  return match ? Number(match[1]) : undefined
}

export const parseCheckpointLoaded = (line: string): number | undefined => {
  const match = CHECKPOINT_LOADED.exec(line)
  return match ? Number(match[1]) : undefined
}

/** Megatron's log keys -> the metric names the worker uses (others become snake_case). */
const metricNames: Readonly<Record<string, string>> = {
  "lm loss": "loss",
  "learning rate": "lr",
  "grad norm": "grad_norm",
  "load_balancing_loss": "aux_loss",
  "z_loss": "z_loss",
  "elapsed time per iteration (ms)": "iteration_ms",
  "throughput per GPU (TFLOP/s/GPU)": "tflops_per_gpu",
  "loss scale": "loss_scale",
  "number of skipped iterations": "skipped_iterations",
  "number of nan iterations": "nan_iterations",
  "consumed samples": "consumed_samples",
  "global batch size": "global_batch_size"
}

export const metricName = (key: string): string =>
  metricNames[key] ?? key.toLowerCase().replace(/\([^)]*\)/g, "").trim().replace(/[^a-z0-9]+/g, "_")

/** The metrics of an iteration line, with tokens/s derived from the iteration time. */
export const iterationMetrics = (
  line: IterationLine,
  tokensPerIteration: number
): ReadonlyArray<{ readonly name: string; readonly value: number }> => {
  const out = [...line.fields].map(([key, value]) => ({ name: metricName(key), value }))
  const ms = line.fields.get("elapsed time per iteration (ms)")
  if (ms !== undefined && ms > 0) out.push({ name: "tokens_per_s", value: tokensPerIteration / (ms / 1000) })
  return out
}
