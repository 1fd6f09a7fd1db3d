import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { completeCheckpoints, iterationDirName, trackedIteration } from "../../../src/megatron/Checkpoints.ts"
import {
  iterationMetrics,
  metricName,
  parseCheckpointLoaded,
  parseCheckpointSaved,
  parseIterationLine,
  parseValidationLine
} from "../../../src/megatron/LogParser.ts"

// training.py's training_log for an MoE model, as Megatron prints it.
const line = " [2025-03-30 12:00:01] iteration     2200/   11029 | consumed samples:      2252800 | " +
  "elapsed time per iteration (ms): 4123.4 | throughput per GPU (TFLOP/s/GPU): 187.2 | " +
  "learning rate: 3.000000E-04 | global batch size:  1024 | lm loss: 2.841234E+00 | " +
  "load_balancing_loss: 1.003121E+00 | z_loss: 3.120000E-01 | loss scale: 1.0 | grad norm: 0.213 | " +
  "number of skipped iterations:   0 | number of nan iterations:   0 |"

describe("Megatron-LM's log", () => {
  it("reads an iteration line's fields", () => {
    const parsed = parseIterationLine(line)!
    expect(parsed.iteration).toBe(2200)
    expect(parsed.trainIters).toBe(11029)
    expect(parsed.fields.get("lm loss")).toBeCloseTo(2.841234, 9)
    expect(parsed.fields.get("learning rate")).toBe(3e-4)
    expect(parsed.fields.get("elapsed time per iteration (ms)")).toBe(4123.4)
    expect(parsed.fields.size).toBe(12)
  })

  it("names the metrics as the worker does, and derives tokens per second", () => {
    const metrics = new Map(iterationMetrics(parseIterationLine(line)!, 1024 * 2048).map((m) => [m.name, m.value]))
    expect(metrics.get("loss")).toBeCloseTo(2.841234, 9)
    expect(metrics.get("lr")).toBe(3e-4)
    expect(metrics.get("grad_norm")).toBe(0.213)
    expect(metrics.get("aux_loss")).toBeCloseTo(1.003121, 9)
    expect(metrics.get("z_loss")).toBeCloseTo(0.312, 9)
    expect(metrics.get("tokens_per_s")).toBeCloseTo((1024 * 2048) / 4.1234, 3)
    expect(metricName("Some new key (units)")).toBe("some_new_key")
  })

  it("reads validation, save and load lines; other lines are not iterations", () => {
    expect(
      parseValidationLine(
        " validation loss at iteration 2200 | lm loss value: 2.912345E+00 | lm loss PPL: 1.840E+01 | "
      )
    ).toEqual({
      iteration: 2200,
      loss: 2.912345
    })
    expect(parseIterationLine(" validation loss at iteration 2200 | lm loss value: 2.9E+00 |")).toBeUndefined()
    expect(parseCheckpointSaved(" successfully saved checkpoint from iteration    2200 to /ckpt [ t 1/1, p 1/1 ]"))
      .toBe(2200)
    expect(parseCheckpointLoaded(" successfully loaded checkpoint from /ckpt [ t 1/1, p 1/1 ] at iteration 1100")).toBe(
      1100
    )
    expect(parseIterationLine("> building train, validation, and test datasets ...")).toBeUndefined()
  })
})

describe("Megatron-LM's checkpoint directory", () => {
  it("a checkpoint is complete once the tracker names it; a newer directory is a partial save", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fp-megatron-ckpt-"))
    expect(trackedIteration(dir)).toBeUndefined()
    for (const it of [10, 20, 30]) fs.mkdirSync(path.join(dir, iterationDirName(it)))
    fs.writeFileSync(path.join(dir, "latest_checkpointed_iteration.txt"), "20\n")
    expect(trackedIteration(dir)).toBe(20)
    expect(completeCheckpoints(dir).map((c) => c.name)).toEqual(["iter_0000010", "iter_0000020"])
    fs.writeFileSync(path.join(dir, "latest_checkpointed_iteration.txt"), "release")
    expect(trackedIteration(dir)).toBeUndefined()
  })
})
