import { describe, expect, it } from "vitest"
import type { TrainingPrefixParams } from "../../../src/flame/trainingPrefix.ts"
import { trainingFamily, trainingPrefixes } from "../../../src/flame/trainingPrefix.ts"

const parts = { kind: "train", version: "1", inputs: { data: "d1", worker: "w1" }, workerHash: "w1" }

const base: TrainingPrefixParams = {
  model: { hiddenSize: 8 },
  data: { split: "90,5,5", seed: 1234 },
  globalBatchSize: 4,
  microBatchSize: 2,
  trainIters: 30,
  lr: 1e-3,
  minLr: 1e-4,
  warmupFraction: 0.1,
  wsdDecayFraction: 0.1,
  weightDecay: 0.01,
  clipGrad: 1,
  seed: 1234,
  backend: "cpu"
}

/**
 * The learning rate of iterations 1..trainIters, step by step as the worker computes it
 * (kernels/src/schedule.cpp), written out independently of the prefix description.
 */
const workerRates = (p: TrainingPrefixParams): Array<number> => {
  const warmup = p.warmupIters ?? p.warmupFraction * p.trainIters
  const wsd = Math.floor(p.trainIters * p.wsdDecayFraction + 1e-9)
  const start = p.trainIters - wsd
  const rates: Array<number> = []
  for (let i = 1; i <= p.trainIters; i++) {
    const n = i - 1
    let lr: number
    if (warmup > 0 && n <= warmup) lr = p.lr * n / warmup
    else if (n > p.trainIters) lr = p.minLr
    else if (n <= start) lr = p.lr
    else {
      const r = (n - start) / wsd
      const style = p.wsdDecayStyle ?? "exponential"
      const coeff = style === "linear"
        ? 1 - r
        : style === "cosine"
        ? 0.5 * (Math.cos(Math.PI * r) + 1)
        : style === "minus_sqrt"
        ? 1 - Math.sqrt(r)
        : 2 * Math.pow(0.5, r) - 1
      lr = p.minLr + coeff * (p.lr - p.minLr)
    }
    rates.push(lr)
  }
  return rates
}

const variants = (): Array<TrainingPrefixParams> => {
  const out: Array<TrainingPrefixParams> = []
  for (const trainIters of [20, 30, 40]) {
    for (const wsdDecayFraction of [0, 0.1, 0.25]) {
      for (const minLr of [1e-4, 3e-5]) {
        for (const warmup of [{ warmupFraction: 0.1 }, { warmupIters: 2 }, { warmupIters: 3 }, { warmupFraction: 0 }]) {
          for (const wsdDecayStyle of [undefined, "linear" as const, "minus_sqrt" as const]) {
            for (const lr of [1e-3, 2e-3]) {
              out.push({
                ...base,
                // A common data size, so every variant is of one family: only the schedules differ.
                data: { ...base.data, splitSamples: { train: 160, valid: 8, test: 8 } },
                trainIters,
                wsdDecayFraction,
                minLr,
                ...("warmupIters" in warmup ? { warmupIters: warmup.warmupIters } : {}),
                warmupFraction: "warmupFraction" in warmup ? warmup.warmupFraction : 0.01,
                wsdDecayStyle,
                lr
              })
            }
          }
        }
      }
    }
  }
  return out
}

describe("training prefix fingerprints", () => {
  it("agree at step k exactly when the worker's learning rates of steps 1..k agree", () => {
    const all = variants().map((p) => ({ p, rates: workerRates(p), prefixes: trainingPrefixes(p, parts, {}) }))
    expect(new Set(all.map((v) => v.prefixes.family)).size).toBe(1)
    let equalPairs = 0
    for (let k = 1; k <= 20; k++) {
      const byPrefix = new Map<string, string>()
      const byRates = new Map<string, string>()
      for (const v of all) {
        const prefix = v.prefixes.at(k)
        const rates = JSON.stringify(v.rates.slice(0, k))
        // Sound: one prefix, one rate sequence. Complete: one rate sequence, one prefix.
        expect(byPrefix.get(prefix) ?? rates).toBe(rates)
        expect(byRates.get(rates) ?? prefix).toBe(prefix)
        if (byPrefix.has(prefix)) equalPairs++
        byPrefix.set(prefix, rates)
        byRates.set(rates, prefix)
      }
    }
    // The check is not vacuous: many variants share prefixes (before their anneals).
    expect(equalPairs).toBeGreaterThan(1000)
  })

  it("a constant-rate run and its cool-down branch share every state up to the branch's anneal", () => {
    const constant = trainingPrefixes({ ...base, trainIters: 54, warmupIters: 3, wsdDecayFraction: 0 }, parts, {})
    const branch = trainingPrefixes(
      { ...base, trainIters: 60, warmupIters: 3, wsdDecayFraction: 0.1, minLr: 1e-5, data: base.data },
      parts,
      {}
    )
    // Without a fixed data size the two runs ask for different sample counts: different families.
    expect(branch.family).not.toBe(constant.family)
    const fixed = { ...base.data, splitSamples: { train: 240, valid: 0, test: 0 } }
    const c = trainingPrefixes({ ...base, data: fixed, trainIters: 54, warmupIters: 3, wsdDecayFraction: 0 }, parts, {})
    const b = trainingPrefixes(
      { ...base, data: fixed, trainIters: 60, warmupIters: 3, wsdDecayFraction: 0.1, minLr: 1e-5 },
      parts,
      {}
    )
    expect(b.family).toBe(c.family)
    // The branch anneals from iteration 56 (lr after 55 steps): its first 55 steps are the constant run's.
    for (let k = 1; k <= 54; k++) expect(b.at(k)).toBe(c.at(k))
    expect(b.at(56)).not.toBe(
      trainingPrefixes({ ...base, data: fixed, trainIters: 60, warmupIters: 3, wsdDecayFraction: 0 }, parts, {}).at(56)
    )
  })

  it("a warm-up fraction and the same absolute warm-up describe one schedule", () => {
    const fraction = trainingPrefixes({ ...base, trainIters: 1000, warmupFraction: 0.01 }, parts, {})
    const absolute = trainingPrefixes({ ...base, trainIters: 1000, warmupIters: 10 }, parts, {})
    expect(absolute.at(500)).toBe(fraction.at(500))
    expect(absolute.at(1000)).toBe(fraction.at(1000))
  })

  it("a change to minLr, the decay fraction or style leaves the states before the anneal shared", () => {
    const a = trainingPrefixes(base, parts, {})
    for (const change of [{ minLr: 5e-5 }, { wsdDecayStyle: "linear" as const }, { wsdDecayFraction: 0.2 }]) {
      const b = trainingPrefixes({ ...base, ...change }, parts, {})
      expect(b.family).toBe(a.family)
      // The shortest anneal here starts after 27 steps (wsdDecayFraction 0.1 of 30 iterations).
      expect(b.at(24)).toBe(a.at(24))
      expect(b.at(30)).not.toBe(a.at(30))
    }
  })

  it("anything fixed for the run (data, seed, batches, optimizer, inputs, worker) separates families", () => {
    const family = trainingFamily(base, parts)
    const changes: Array<Partial<TrainingPrefixParams>> = [
      { seed: 1 },
      { data: { ...base.data, seed: 7 } },
      { data: { ...base.data, split: "80,10,10" } },
      { globalBatchSize: 8 },
      { microBatchSize: 4 },
      { weightDecay: 0.1 },
      { clipGrad: 0.5 },
      { model: { hiddenSize: 16 } },
      { backend: "cuda" },
      { trainIters: 31 }
    ]
    for (const change of changes) expect(trainingFamily({ ...base, ...change }, parts)).not.toBe(family)
    expect(trainingFamily(base, { ...parts, inputs: { data: "d2", worker: "w1" } })).not.toBe(family)
    expect(trainingFamily(base, { ...parts, workerHash: "w2" })).not.toBe(family)
    expect(trainingFamily(base, { ...parts, version: "2" })).not.toBe(family)
  })

  it("lr and warm-up changes keep the family but change every prefix after the first step", () => {
    const a = trainingPrefixes(base, parts, {})
    for (const change of [{ lr: 2e-3 }, { warmupIters: 5 }]) {
      const b = trainingPrefixes({ ...base, ...change }, parts, {})
      expect(b.family).toBe(a.family)
      for (let k = 2; k <= 30; k++) expect(b.at(k)).not.toBe(a.at(k))
    }
  })
})
