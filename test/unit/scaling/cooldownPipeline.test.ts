import { Effect, Exit } from "effect"
import { describe, expect, it } from "vitest"
import ablation from "../../../pipelines/ablation.ts"
import { lrAtIteration, type WsdSchedule } from "../../../src/flame/schedule.ts"
import { resolve, type ResolvedStage } from "../../../src/Pipeline.ts"
import { fromRoot } from "../../../src/ProjectRoot.ts"

const fixtures = {
  corpus: fromRoot("fixtures", "corpus"),
  tokenizer: fromRoot("fixtures", "tokenizer", "tokenizer.json")
}

const resolved = (preset: string, gpus = 0) =>
  Effect.runSync(resolve(ablation, { preset, executor: { gpus }, config: preset === "cooldown" ? fixtures : {} }))

interface TrainParams {
  readonly scale: string
  readonly trainIters: number
  readonly saveInterval: number
  readonly saveIters?: ReadonlyArray<number>
  readonly wsdDecayFraction: number
  readonly warmupIters?: number
  readonly lr: number
  readonly minLr: number
  readonly globalBatchSize: number
  readonly data: { readonly splitSamples?: { readonly train: number; readonly valid: number; readonly test: number } }
}

const paramsOf = (s: ResolvedStage) => s.encodedParams as unknown as TrainParams

/** What a const run and a branch may differ in: how long they run, the anneal and the saves. */
const withoutLength = (s: ResolvedStage) => {
  const { saveInterval: _i, saveIters: _s, trainIters: _t, wsdDecayFraction: _w, ...rest } = s.encodedParams
  return rest
}

// A tenth of T, in integers: the anneal's length (the worker's floor(0.1 T)).
const tenth = (t: number) => (t - (t % 10)) / 10

const schedule = (p: TrainParams): WsdSchedule => ({
  maxLr: p.lr,
  minLr: p.minLr,
  trainIters: p.trainIters,
  globalBatchSize: p.globalBatchSize,
  warmupFraction: 0.01,
  ...(p.warmupIters === undefined ? {} : { warmupIters: p.warmupIters }),
  wsdIters: p.wsdDecayFraction === 0 ? 0 : tenth(p.trainIters),
  decayStyle: "exponential"
})

describe("the cool-down presets of the ablation", () => {
  const tiny = resolved("tiny")
  const both = resolved("cooldown-tiny")
  const ids = both.stages.map((s) => s.id)
  const consts = ids.filter((id) => /^ablation\/cooldown\/train\/d\d+-l\d+-const-tiny$/.test(id))
  const branches = ids.filter((id) => id.startsWith("ablation/cooldown/train/") && !consts.includes(id))

  it("cooldown-tiny holds the tiny grid's stages unchanged: same ids, definitions, params and inputs", () => {
    expect(tiny.stages.some((s) => s.id.startsWith("ablation/cooldown/"))).toBe(false)
    for (const s of tiny.stages) {
      if (s.id === "ablation/report") continue
      const other = both.byId.get(s.id)
      expect(other, s.id).toBeDefined()
      expect(other!.definition, s.id).toBe(s.definition)
      expect(other!.encodedParams, s.id).toEqual(s.encodedParams)
      expect(other!.inputs, s.id).toEqual(s.inputs)
    }
    expect(both.byId.has("ablation/report")).toBe(false)
    expect(both.byId.has("ablation/cooldown/report")).toBe(true)
  })

  it("has a constant-rate run per shape, before its five branches in the node order", () => {
    expect(consts).toHaveLength(16)
    expect(branches).toHaveLength(80)
    const nodes = ablation.build({ preset: "cooldown-tiny", config: {}, executor: { gpus: 0 } }).map((n) => n.id)
    for (const c of consts) {
      const shape = c.slice("ablation/cooldown/train/".length, -"-const-tiny".length)
      const mine = branches.filter((b) => b.startsWith(`ablation/cooldown/train/${shape}-`))
      expect(mine, shape).toHaveLength(5)
      for (const b of mine) expect(nodes.indexOf(c), b).toBeLessThan(nodes.indexOf(b))
    }
  })

  it("each branch agrees with its constant-rate run on every param and step up to its anneal start", () => {
    for (const c of consts) {
      const shape = c.slice("ablation/cooldown/train/".length, -"-const-tiny".length)
      const trunk = both.byId.get(c)!
      const t = paramsOf(trunk)
      expect(t.wsdDecayFraction).toBe(0)
      expect(t.saveInterval).toBe(t.trainIters)
      const mine = branches.filter((b) => b.startsWith(`ablation/cooldown/train/${shape}-`)).map((b) =>
        both.byId.get(b)!
      )
      const starts = mine.map((b) => paramsOf(b).trainIters - tenth(paramsOf(b).trainIters))
      expect(t.saveIters).toEqual([...new Set(starts)].sort((a, b) => a - b))
      expect(t.trainIters).toBe(Math.max(...starts))
      expect(Object.keys(trunk.outputs)).toEqual(
        [...new Set(starts)].sort((a, b) => a - b).map((i) => `iter_${String(i).padStart(7, "0")}`)
      )
      for (const b of mine) {
        const p = paramsOf(b)
        expect(withoutLength(b), b.id).toEqual(withoutLength(trunk))
        expect(b.inputs, b.id).toEqual(trunk.inputs)
        expect(p.wsdDecayFraction, b.id).toBe(0.1)
        expect(p.saveInterval, b.id).toBe(p.trainIters)
        expect(Object.keys(b.outputs), b.id).toEqual([`iter_${String(p.trainIters).padStart(7, "0")}`])
        // The sample order is fixed by the train split's size: the longest branch's, shared by all.
        expect(p.data.splitSamples!.train, b.id).toBe(
          Math.max(...mine.map((m) => paramsOf(m).trainIters)) * p.globalBatchSize
        )
        const start = p.trainIters - tenth(p.trainIters)
        expect(p.warmupIters!, b.id).toBeLessThanOrEqual(start)
        for (let it = 1; it <= start; it++) {
          expect(lrAtIteration(schedule(p), it), `${b.id} iteration ${it}`).toBe(lrAtIteration(schedule(t), it))
        }
      }
    }
  })

  it("validates each branch's final checkpoint with the grid's params, and fits the 80 branch ends", () => {
    for (const b of branches) {
      const run = b.slice("ablation/cooldown/train/".length)
      const cooled = both.byId.get(`ablation/cooldown/val-loss/${run}`)!
      const grid = both.byId.get(`ablation/val-loss/${run}`)!
      expect(cooled.encodedParams, run).toEqual(grid.encodedParams)
      expect(cooled.inputs.checkpoint, run).toEqual({
        stage: b,
        output: `iter_${String(paramsOf(both.byId.get(b)!).trainIters).padStart(7, "0")}`
      })
    }
    const fit = both.byId.get("ablation/cooldown/fit")!
    expect(Object.values(fit.inputs).map((r) => r.stage).sort()).toEqual(
      branches.map((b) => b.replace("/train/", "/val-loss/")).sort()
    )
    const report = both.byId.get("ablation/cooldown/report")!
    expect(Object.keys(report.inputs)).toEqual(
      expect.arrayContaining(["ablation/fit", "ablation/cooldown/fit", ...consts, ...branches])
    )
  })

  it("cooldown: the cool-down grid alone at the published sizes", () => {
    const p = resolved("cooldown", 1)
    expect(p.stages.some((s) => s.id.startsWith("ablation/train/") || s.id === "ablation/fit")).toBe(false)
    const trunk = paramsOf(p.byId.get("ablation/cooldown/train/d256-l6-const")!)
    // 2377 .. 71300 iterations: anneal starts 2140 .. 64170, 1% of the shortest branch rounded up.
    expect(trunk.saveIters).toEqual([2140, 6417, 12834, 21391, 64170])
    expect(trunk.warmupIters).toBe(24)
    expect(trunk.data.splitSamples).toEqual({ train: 71300 * 1024, valid: 1024, test: 0 })
    expect(p.byId.has("ablation/cooldown/train/d2048-l18-3e19")).toBe(true)
    expect(p.byId.has("ablation/cooldown/report")).toBe(true)
  })

  it("cooldown: refuses to start without the corpus, tokenizer and GPUs, naming the preset", () => {
    const exit = Effect.runSyncExit(resolve(ablation, { preset: "cooldown", executor: { gpus: 0 } }))
    expect(Exit.isFailure(exit)).toBe(true)
    const message = Exit.isFailure(exit) ? String(exit.cause) : ""
    expect(message).toContain("preset cooldown cannot run yet")
    expect(message).toContain("--config corpus=")
    expect(message).toContain("--config tokenizer=")
    expect(message).toContain("GPUs")
  })
})
