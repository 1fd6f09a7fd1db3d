import { describe, expect, it } from "vitest"
import { lrAtIteration, type WsdSchedule } from "../../../src/flame/schedule.ts"
import type { AblationRun } from "../../../src/scaling/ablationRuns.ts"
import { publishedAblationRuns, tinyAblationRuns } from "../../../src/scaling/ablationRuns.ts"
import {
  annealIterations,
  cooldownIterations,
  cooldownShapes,
  gridIterations,
  plannedIterations,
  plannedTokens,
  sharedWarmupIterations,
  trainedIterations
} from "../../../src/scaling/cooldownRuns.ts"

// The naive counts below go step by step, with integer arithmetic only, and share no code with the
// module under test: a tenth of T is (T - T mod 10) / 10, a hundredth rounded up is the first W with
// 100 W >= T.
const tenth = (t: number) => (t - (t % 10)) / 10
const hundredthUp = (t: number) => {
  let w = 0
  while (100 * w < t) w++
  return w
}

const byShape = (runs: ReadonlyArray<AblationRun>) => {
  const map = new Map<string, Array<AblationRun>>()
  for (const r of runs) map.set(r.shape, [...(map.get(r.shape) ?? []), r])
  return map
}

/** Tokens each approach trains, one iteration at a time. */
const naiveTokens = (runs: ReadonlyArray<AblationRun>) => {
  let grid = 0
  let cooldown = 0
  for (const members of byShape(runs).values()) {
    const perIteration = members[0]!.globalBatchSize * members[0]!.seqLength
    for (const r of members) for (let it = 1; it <= r.trainIters; it++) grid += perIteration
    // Steps the constant-rate run trains: 1 .. max anneal start; each branch then trains its anneal.
    const starts = members.map((r) => r.trainIters - tenth(r.trainIters))
    for (let it = 1; it <= Math.max(...starts); it++) cooldown += perIteration
    members.forEach((r, i) => {
      for (let it = starts[i]! + 1; it <= r.trainIters; it++) cooldown += perIteration
    })
  }
  return { grid, cooldown }
}

const schedule = (
  r: AblationRun,
  trainIters: number,
  warmupIters: number,
  wsdIters: number
): WsdSchedule => ({
  maxLr: r.lr,
  minLr: r.minLr,
  trainIters,
  globalBatchSize: r.globalBatchSize,
  warmupFraction: 0.01,
  warmupIters,
  wsdIters,
  decayStyle: "exponential"
})

const percent = (x: number) => `${(100 * x).toFixed(2)}%`

describe.each([
  ["published", publishedAblationRuns(), ""],
  ["tiny", tinyAblationRuns(), "-tiny"]
])("the cool-down plan of the %s grid", (name, runs, idSuffix) => {
  const shapes = cooldownShapes(runs, { idSuffix })

  it("has one constant-rate run per shape and one branch per grid run", () => {
    expect(shapes).toHaveLength(16)
    expect(shapes.flatMap((s) => s.branches.map((b) => b.run.id))).toEqual(
      expect.arrayContaining(runs.map((r) => r.id))
    )
    expect(shapes.reduce((n, s) => n + s.branches.length, 0)).toBe(80)
    for (const s of shapes) expect(s.constId).toBe(`${s.shape}-const${idSuffix}`)
  })

  it("anneal starts, warm-up, lengths and split sizes agree with a naive count", () => {
    for (const [shape, members] of byShape(runs)) {
      const s = shapes.find((x) => x.shape === shape)!
      const starts = members.map((r) => r.trainIters - tenth(r.trainIters))
      expect(s.branches.map((b) => b.annealStart), shape).toEqual(starts)
      expect(s.branches.map((b) => b.annealIters), shape).toEqual(members.map((r) => tenth(r.trainIters)))
      expect(s.saveIters, shape).toEqual([...new Set(starts)].sort((a, b) => a - b))
      expect(s.constTrainIters, shape).toBe(Math.max(...starts))
      const shortest = Math.min(...members.map((r) => r.trainIters))
      expect(s.warmupIters, shape).toBe(hundredthUp(shortest))
      expect(s.warmupIters, shape).toBeGreaterThanOrEqual(1)
      expect(s.warmupIters, shape).toBeLessThanOrEqual(Math.min(...starts))
      const longest = Math.max(...members.map((r) => r.trainIters))
      expect(s.splitSamples.train, shape).toBe(longest * members[0]!.globalBatchSize)
      for (const r of members) expect(s.splitSamples.train).toBeGreaterThanOrEqual(r.trainIters * r.globalBatchSize)
    }
  })

  it("each branch runs the constant-rate run's learning rate on every step up to its anneal start", () => {
    for (const s of shapes) {
      const constant = schedule(s.template, s.constTrainIters, s.warmupIters, 0)
      for (const b of s.branches) {
        const branch = schedule(b.run, b.run.trainIters, s.warmupIters, tenth(b.run.trainIters))
        let agree = 0
        while (
          agree < Math.min(b.run.trainIters, s.constTrainIters) &&
          lrAtIteration(branch, agree + 1) === lrAtIteration(constant, agree + 1)
        ) agree++
        expect(agree, b.run.id).toBeGreaterThanOrEqual(b.annealStart)
        // Past the anneal start the rates part (unless the branch is the run's end, or has no anneal).
        if (b.annealIters > 1) expect(agree, b.run.id).toBeLessThan(b.run.trainIters)
        // The anneal: the iterations whose step count is past the warm-up and below the peak rate.
        let annealing = 0
        for (let n = 1; n <= b.run.trainIters; n++) {
          if (n > s.warmupIters && lrAtIteration(branch, n + 1) < b.run.lr) annealing++
        }
        expect(annealing, b.run.id).toBe(b.annealIters)
      }
    }
  })

  it("plans the tokens a naive count gives, at least max a_i + sum w_i per shape", () => {
    const naive = naiveTokens(runs)
    const planned = plannedTokens(shapes)
    expect(planned).toEqual(naive)
    for (const s of shapes) {
      expect(gridIterations(s)).toBe(s.branches.reduce((n, b) => n + b.run.trainIters, 0))
      expect(cooldownIterations(s)).toBe(
        Math.max(...s.branches.map((b) => b.annealStart)) + s.branches.reduce((n, b) => n + b.annealIters, 0)
      )
      // The largest budget alone is its shape's floor: a_max + w_max = T_max.
      expect(cooldownIterations(s)).toBeGreaterThanOrEqual(Math.max(...s.branches.map((b) => b.run.trainIters)))
    }
    const ratios = shapes.map((s) => cooldownIterations(s) / gridIterations(s))
    const floor = shapes.reduce((n, s) => n + Math.max(...s.branches.map((b) => b.run.trainIters)), 0) /
      shapes.reduce((n, s) => n + gridIterations(s), 0)
    // The figures docs/cooldown.md quotes.
    console.log(
      `${name}: grid ${planned.grid.toExponential(4)} tokens, cool-down ${planned.cooldown.toExponential(4)} ` +
        `(${percent(planned.cooldown / planned.grid)} of the grid; largest budgets alone ${percent(floor)}; ` +
        `per shape ${percent(Math.min(...ratios))} .. ${percent(Math.max(...ratios))})`
    )
    expect(planned.cooldown / planned.grid).toBeGreaterThan(floor)
    expect(planned.cooldown / planned.grid).toBeLessThan(floor + 0.1)
  })
})

describe("the cool-down figures docs/cooldown.md quotes", () => {
  it("published: 296,464 of the grid's 463,288 iterations, 63.99% of its tokens", () => {
    const planned = plannedTokens(cooldownShapes(publishedAblationRuns()))
    expect(planned).toEqual({ grid: 463_288 * 1024 * 2048, cooldown: 296_464 * 1024 * 2048 })
    expect((100 * planned.cooldown / planned.grid).toFixed(2)).toBe("63.99")
  })

  it("tiny: 12,865 of the grid's 20,139 iterations, 63.88% of its tokens", () => {
    const planned = plannedTokens(cooldownShapes(tinyAblationRuns(), { idSuffix: "-tiny" }))
    expect(planned).toEqual({ grid: 20_139 * 4 * 32, cooldown: 12_865 * 4 * 32 })
    expect((100 * planned.cooldown / planned.grid).toFixed(2)).toBe("63.88")
  })
})

describe("the pieces", () => {
  it("anneal lengths round as the worker does, however 0.1 x T lands in floating point", () => {
    for (let t = 1; t <= 100_000; t++) expect(annealIterations(t, 0.1)).toBe(tenth(t))
  })

  it("the shared warm-up is 1% of the shortest branch rounded up, whatever the float error of 0.01 x T", () => {
    for (let t = 1; t <= 100_000; t += 7) expect(sharedWarmupIterations([t, 3 * t], 0.01)).toBe(hundredthUp(t))
    expect(sharedWarmupIterations([300, 900], 0.01)).toBe(3)
    expect(sharedWarmupIterations([46, 1379], 0.01)).toBe(1)
  })

  it("planned iterations: all of the constant-rate run, the anneal of a branch", () => {
    expect(plannedIterations({ trainIters: 64170, wsdDecayFraction: 0 })).toBe(64170)
    expect(plannedIterations({ trainIters: 2377, wsdDecayFraction: 0.1 })).toBe(237)
    expect(trainedIterations(2377, 2140)).toBe(237)
    expect(trainedIterations(2377, undefined)).toBe(2377)
  })

  it("refuses runs of one shape that differ in more than their length", () => {
    const runs = tinyAblationRuns().filter((r) => r.shape === "d256-l6")
    const odd = runs.map((r, i) => (i === 2 ? { ...r, lr: r.lr / 2 } : r))
    expect(() => cooldownShapes(odd)).toThrow(/lr/)
  })
})
