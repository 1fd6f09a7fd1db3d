// The flame-moe-release pipeline, tiny preset, through the CLI: Megatron-format checkpoints of two
// tiny scales (written by scripts/megatron/write_checkpoint.py as FLAME-MoE's runs save them:
// torch_dist, TE spec, sequential experts, EP 8, bf16) are discovered, imported, evaluated, traced and
// analysed; a second run executes nothing; a damaged checkpoint fails its import stage naming the
// file and tensor, promotes nothing, and prints no stack.
import { execa } from "execa"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { tinyScales } from "../../../src/flame/tinyPreset.ts"
import { defaultTinyOptions } from "../../../src/flame/tinyPreset.ts"
import { tokenizerVocabSize } from "../../../stages/flame/data.ts"
import { cli, executedStages, root, runJson, tempWorkspace } from "../../support/cli.ts"
import { pythonWith } from "../../support/python.ts"

const generator = path.join(root, "scripts", "megatron", "write_checkpoint.py")
const vocab = tokenizerVocabSize(path.join(root, "fixtures", "tokenizer", "tokenizer.json"))
const scales = tinyScales({ ...defaultTinyOptions, vocabSize: vocab })
const pick = ["flame-moe-38m-tiny", "flame-moe-290m-tiny"].map((id) => scales.find((s) => s.id === id)!)

/** A released model's directory: iter_XXXXXXX checkpoints at two of its save steps, as Megatron writes them. */
const writeModel = async (dir: string, t: (typeof scales)[number], steps: ReadonlyArray<number>) => {
  const python = pythonWith("torch", "numpy")
  for (const step of steps) {
    await execa(python, [
      generator,
      "--random-init",
      ...["--seed", String(step), "--vocab-size", String(t.paddedVocabSize), "--hidden-size", String(t.hiddenSize)],
      ...["--num-layers", String(t.numLayers), "--num-attention-heads", String(t.numAttentionHeads)],
      ...["--ffn-hidden-size", String(t.ffnHiddenSize), "--moe-ffn-hidden-size", String(t.moeFfnHiddenSize)],
      ...["--num-experts", String(t.numExperts), "--topk", String(t.routerTopK)],
      ...["--shared-expert-size", String(t.sharedExpertWidthFactor * t.moeFfnHiddenSize)],
      ...["--moe-layers", t.moeLayerFreq, "--seq-length", String(t.seqLength)],
      ...["--out", dir, "--iteration", String(step), "--format", "torch_dist", "--ep", "8", "--dtype", "bf16"]
    ])
  }
}

describe("flame-moe-release (tiny)", () => {
  it("imports, evaluates, traces and analyses released-format checkpoints; reruns nothing", async () => {
    const ws = tempWorkspace("fp-release-")
    const models = path.join(ws, "models")
    const roots = pick.map((t) => path.join(models, t.id))
    for (const [i, t] of pick.entries()) await writeModel(roots[i]!, t, [t.saveInterval, t.trainIters])

    const args = [
      "flame-moe-release",
      "--preset",
      "tiny",
      "--workspace",
      ws,
      "--config",
      `checkpoints=${roots.join(",")}`
    ]
    const first = await runJson(args)
    expect(first.result.exitCode, first.result.stderr.slice(-3000)).toBe(0)
    const executed = executedStages(first.summary)
    for (const t of pick) {
      for (const step of [t.saveInterval, t.trainIters]) {
        expect(executed).toContain(`import/${t.id}/${step}`)
        expect(executed).toContain(`eval/${t.id}/${step}`)
        expect(executed).toContain(`trace/${t.id}/${step}`)
      }
      expect(executed).toContain(`analysis/${t.id}/saturation`)
      // Co-activation and specialization at every checkpoint, as FLAME-MoE's notebooks compute them.
      expect(executed).toContain(`analysis/${t.id}/coactivation`)
      expect(executed).toContain(`analysis/${t.id}/coactivation/${t.saveInterval}`)
      expect(executed).toContain(`analysis/${t.id}/specialization/${t.saveInterval}`)
      expect(executed).toContain(`analysis/${t.id}/specialization-tracking`)
    }
    expect(executed).toContain("suite/report")
    // The report shows routing over training (both checkpoints of each model) and decodes tokens.
    const reportDir = path.join(ws, "artifacts", "suite", "report")
    const html = fs.readFileSync(path.join(reportDir, fs.readdirSync(reportDir)[0]!, "report.html"), "utf8")
    for (const t of pick) {
      expect(html).toContain(`data-figure="coactivation-over-training-${t.id}"`)
      expect(html).toContain(`data-figure="specialization-over-training-${t.id}"`)
    }
    expect(html).toMatch(/<td>&quot;[^<]*&quot; \(\d+\)<\/td>/)

    // The imported model is the scale's, and its validation loss is that of an untrained model: ~ln(V).
    const evalDir = path.join(ws, "artifacts", "eval", pick[0]!.id, String(pick[0]!.trainIters))
    const [fingerprint] = fs.readdirSync(evalDir)
    const evaluated = JSON.parse(fs.readFileSync(path.join(evalDir, fingerprint!, "eval.json"), "utf8")) as {
      validationLoss: number
    }
    const loss = evaluated.validationLoss
    expect(loss).toBeGreaterThan(Math.log(pick[0]!.paddedVocabSize) - 1)
    expect(loss).toBeLessThan(Math.log(pick[0]!.paddedVocabSize) + 1)

    const again = await runJson(args)
    expect(again.result.exitCode).toBe(0)
    expect(again.summary?.executed).toBe(0)
  })

  it("a damaged checkpoint fails its import stage with the file and tensor named, and promotes nothing", async () => {
    const ws = tempWorkspace("fp-release-bad-")
    const t = pick[0]!
    const dir = path.join(ws, "models", t.id)
    await writeModel(dir, t, [t.trainIters])
    const iter = path.join(dir, `iter_${String(t.trainIters).padStart(7, "0")}`)
    const victim = fs.readdirSync(iter).filter((f) => f.endsWith(".distcp")).sort()[0]!
    fs.truncateSync(path.join(iter, victim), 64)
    const { result, summary } = await runJson([
      "flame-moe-release",
      "--preset",
      "tiny",
      "--workspace",
      ws,
      "--config",
      `checkpoints=${dir}`,
      "--keep-going"
    ])
    expect(result.exitCode).toBe(1)
    const failed = summary?.stages.find((s) => s.stage === `import/${t.id}/${t.trainIters}`)
    expect(failed?.status).toBe("failed")
    expect(failed?.error).toMatch(new RegExp(`file ${victim.replace(".", "\\.")}, tensor [\\w.]+: its storage entry`))
    expect(result.stderr).not.toMatch(/\n\s+at .+:\d+:\d+/)
    const artifacts = path.join(ws, "artifacts", "import")
    expect(fs.existsSync(artifacts) ? fs.readdirSync(artifacts) : []).toEqual([])
  })

  it("says what to set when the checkpoints are missing or unrecognisable", async () => {
    const ws = tempWorkspace("fp-release-config-")
    const none = await cli(["plan", "flame-moe-release", "--preset", "tiny", "--workspace", ws])
    expect(none.exitCode).not.toBe(0)
    expect(none.stderr).toContain("--config checkpoints=DIR")
    const odd = path.join(ws, "some-model")
    fs.mkdirSync(odd)
    const unknown = await cli([
      "plan",
      "flame-moe-release",
      "--preset",
      "tiny",
      "--workspace",
      ws,
      "--config",
      `checkpoints=${odd}`
    ])
    expect(unknown.exitCode).not.toBe(0)
    expect(unknown.stderr).toContain(`cannot tell the scale of ${odd}`)
    expect(unknown.stderr).not.toMatch(/\n\s+at .+:\d+:\d+/)
  })
})
