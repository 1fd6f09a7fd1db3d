/**
 * Routing over training: the co-activation concentration of each checkpoint and the specialization
 * tracking across checkpoints, against naive computations straight from the routing the synthetic traces
 * were written with (no shared code with the analyses beyond the trace writer).
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { perturbRouting, shapeOf, syntheticRouting, syntheticTokens } from "../../../bench/analysis/synthetic.ts"
import { expertCoactivation } from "../../../src/analysis/coactivation.ts"
import { coactivationConcentration, coactivationOverTraining } from "../../../src/analysis/coactivationConcentration.ts"
import { expertSpecialization } from "../../../src/analysis/specialization.ts"
import { trackSpecialization } from "../../../src/analysis/specializationTracking.ts"
import { writeTrace } from "../../../src/analysis/traceWriter.ts"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fp-routing-training-"))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

// Small enough that many tokens are rare and several experts have fewer than two eligible tokens.
const o = { numTokens: 240, vocabSize: 60, numExperts: 32, topK: 2, numLayers: 2, seqLength: 60, seed: 11 }
const steps = [10, 20, 30, 40]
const tokens = syntheticTokens(o, 0, o.numTokens)
const finalRouting = [0, 1].map((layer) => syntheticRouting(o, layer, tokens, 0))
// [step][layer]: earlier checkpoints replace more of the final routing; the third is the final one again in
// layer 0 (its top tokens cannot differ from the final ones there).
const routing = [0.8, 0.5, 0, 0].map((change, s) =>
  finalRouting.map((ids, layer) =>
    change === 0 ? ids : perturbRouting(o, ids, layer === 0 || s === 0 ? change : 0.2, 100 * s + layer)
  )
)

const traceFiles = steps.map((step, s) => {
  const file = path.join(dir, `trace-${step}.bin`)
  writeTrace(file, shapeOf(o), tokens, (layer) => [{ ids: routing[s]![layer]! }])
  return file
})

/** Experts of token t in layer l at checkpoint s. */
const expertsOf = (s: number, l: number, t: number) =>
  Array.from(routing[s]![l]!.subarray(t * o.topK, (t + 1) * o.topK))

describe("co-activation concentration", () => {
  it("is each row's largest share and the largest entry, as counted token by token", () => {
    for (const [s, step] of steps.entries()) {
      const result = expertCoactivation({ scale: "s", step, file: traceFiles[s]! })
      const summary = coactivationConcentration(result)
      for (let l = 0; l < o.numLayers; l++) {
        // Naive: count each ordered pair of distinct experts of every token, and each expert's tokens.
        const E = o.numExperts
        const both = Array.from({ length: E }, () => new Array<number>(E).fill(0))
        const alone = new Array<number>(E).fill(0)
        for (let t = 0; t < o.numTokens; t++) {
          const ex = expertsOf(s, l, t)
          for (const i of ex) {
            alone[i]!++
            for (const j of ex) if (i !== j) both[i]![j]!++
          }
        }
        let shares = 0
        let active = 0
        let max = 0
        for (let i = 0; i < E; i++) {
          if (alone[i] === 0) continue
          const row = both[i]!.map((c) => c / alone[i]!)
          const rowMax = Math.max(...row)
          const rowSum = row.reduce((a, b) => a + b, 0)
          // Each of the expert's tokens has topK - 1 other experts: the row always sums to topK - 1.
          expect(rowSum).toBeCloseTo(o.topK - 1, 12)
          shares += rowMax / rowSum
          active++
          max = Math.max(max, rowMax)
        }
        expect(summary[l]!.layer).toBe(l + 2)
        expect(summary[l]!.topPartnerShare).toBeCloseTo(shares / active, 12)
        expect(summary[l]!.maxCoactivation).toBeCloseTo(max, 12)
        // The synthetic routing prefers neighbouring experts: well above the even share 1 / (E - 1).
        expect(summary[l]!.topPartnerShare).toBeGreaterThan(1 / (E - 1))
      }
    }
  })

  it("lines checkpoints up by step, and refuses results of another model", () => {
    const results = steps.map((step, s) => expertCoactivation({ scale: "s", step, file: traceFiles[s]! }))
    const over = coactivationOverTraining([results[2]!, results[0]!, results[3]!, results[1]!])
    expect(over.steps).toEqual(steps)
    expect(over.layers).toEqual([2, 3])
    expect(over.topPartnerShare[1]).toEqual(results.map((r) => coactivationConcentration(r)[1]!.topPartnerShare))
    expect(over.maxCoactivation[0]).toEqual(results.map((r) => coactivationConcentration(r)[0]!.maxCoactivation))
    const other = { ...results[1]!, layers: [2, 4] }
    expect(() => coactivationOverTraining([results[0]!, other])).toThrow(
      /co-activation of s at step 20: layers \[2, 4\] of 32 experts, but step 10 has \[2, 3\] of 32/
    )
  })
})

describe("specialization tracking", () => {
  const minOccurrences = 5
  const topTokens = 2
  const countsFiles = steps.map((step, s) => {
    const countsFile = path.join(dir, `counts-${step}.bin`)
    expertSpecialization({
      scale: "s",
      step,
      file: traceFiles[s]!,
      vocabSize: o.vocabSize,
      minOccurrences: 10,
      topTokens: 10,
      countsFile
    })
    return countsFile
  })

  /** Naive top tokens of expert e in layer l at checkpoint s, with their scores. */
  const naiveTop = (s: number, l: number, e: number) => {
    const occurrences = new Map<number, number>()
    const routed = new Map<number, number>()
    for (let t = 0; t < o.numTokens; t++) {
      const token = tokens[t]!
      occurrences.set(token, (occurrences.get(token) ?? 0) + 1)
      if (expertsOf(s, l, t).includes(e)) routed.set(token, (routed.get(token) ?? 0) + 1)
    }
    const score = (token: number) => (routed.get(token) ?? 0) / occurrences.get(token)!
    const top = [...occurrences.keys()]
      .filter((token) => occurrences.get(token)! >= minOccurrences && (routed.get(token) ?? 0) > 0)
      .sort((a, b) => score(b) - score(a) || occurrences.get(b)! - occurrences.get(a)! || a - b)
      .slice(0, topTokens)
    return { top, score, occurrences }
  }

  const tracking = trackSpecialization({
    scale: "s",
    checkpoints: steps.map((step, s) => ({ step, file: countsFiles[s]! })),
    minOccurrences,
    topTokens
  })

  it("follows each expert's final top tokens over every checkpoint, with their scores there", () => {
    expect(tracking.steps).toEqual(steps)
    expect(tracking.finalStep).toBe(40)
    expect(tracking.layers).toEqual([2, 3])
    const final = steps.length - 1
    let short = 0
    for (let l = 0; l < o.numLayers; l++) {
      const layer = tracking.perLayer[l]!
      for (let e = 0; e < o.numExperts; e++) {
        const expert = layer.experts[e]!
        const { occurrences, top } = naiveTop(final, l, e)
        if (top.length < topTokens) short++
        expect(expert.tracked.map((t) => t.token), `layer ${l} expert ${e}`).toEqual(top)
        expert.tracked.forEach((t) => {
          expect(t.occurrences).toBe(occurrences.get(t.token))
          t.scores.forEach((v, s) => expect(v).toBeCloseTo(naiveTop(s, l, e).score(t.token), 14))
        })
        steps.forEach((_, s) =>
          expect(expert.top[s], `layer ${l} expert ${e} step ${s}`).toEqual(naiveTop(s, l, e).top)
        )
      }
    }
    // The data exercise the short lists (an expert with fewer than topTokens eligible tokens it received).
    expect(short).toBeGreaterThan(0)
  })

  it("summarises each layer per checkpoint: mean scores and how many experts keep their top tokens", () => {
    const mean = (xs: ReadonlyArray<number>) => (xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length)
    const same = (a: ReadonlyArray<number>, b: ReadonlyArray<number>) =>
      a.length === b.length && [...a].sort().join() === [...b].sort().join()
    const E = o.numExperts
    for (let l = 0; l < o.numLayers; l++) {
      const layer = tracking.perLayer[l]!
      const tops = steps.map((_, s) => Array.from({ length: E }, (_, e) => naiveTop(s, l, e)))
      const final = tops[steps.length - 1]!
      steps.forEach((_, s) => {
        const at = tops[s]!
        const best = at.map(({ score, top }) => (top.length === 0 ? 0 : score(top[0]!)))
        expect(layer.meanTopScore[s]).toBeCloseTo(best.reduce((a, b) => a + b, 0) / E, 14)
        for (let rank = 0; rank < topTokens; rank++) {
          // The final checkpoint's rank-th token of each expert that has one, scored at this checkpoint.
          const values = final.flatMap(({ top }, e) => (top.length > rank ? [at[e]!.score(top[rank]!)] : []))
          const expected = mean(values)
          if (expected === null) expect(layer.meanTrackedScore[rank]![s]).toBeNull()
          else expect(layer.meanTrackedScore[rank]![s]).toBeCloseTo(expected, 14)
        }
        const withFinal = final.flatMap(({ top }, e) => (top.length > 0 ? [e] : []))
        expect(layer.sameAsFinal[s]).toBeCloseTo(
          mean(withFinal.map((e) => (same(at[e]!.top, final[e]!.top) ? 1 : 0)))!,
          14
        )
        if (s === 0) expect(layer.sameAsPrevious[s]).toBeNull()
        else {
          const before = tops[s - 1]!
          const kept = at.flatMap(({ top }, e) =>
            top.length === 0 && before[e]!.top.length === 0 ? [] : [same(top, before[e]!.top) ? 1 : 0]
          )
          expect(layer.sameAsPrevious[s]).toBeCloseTo(mean(kept)!, 14)
        }
      })
      expect(layer.sameAsFinal[steps.length - 1]).toBe(1)
    }
    // Layer 0's third checkpoint routes as the final one; the heavily perturbed first one does not.
    expect(tracking.perLayer[0]!.sameAsFinal[2]).toBe(1)
    expect(tracking.perLayer[0]!.sameAsFinal[0]).toBeLessThan(1)
    expect(tracking.perLayer[0]!.meanTrackedScore[0]![0]).toBeLessThan(tracking.perLayer[0]!.meanTrackedScore[0]![3]!)
  })

  it("names the counts file of a checkpoint that traced other layers", () => {
    const odd = path.join(dir, "odd-trace.bin")
    writeTrace(odd, { ...shapeOf(o), layerIds: [1, 3] }, tokens, (layer) => [{ ids: routing[0]![layer]! }])
    const oddCounts = path.join(dir, "odd-counts.bin")
    expertSpecialization({
      scale: "s",
      step: 10,
      file: odd,
      vocabSize: o.vocabSize,
      minOccurrences: 10,
      topTokens: 10,
      countsFile: oddCounts
    })
    expect(() =>
      trackSpecialization({
        scale: "s",
        checkpoints: [{ step: 10, file: oddCounts }, { step: 40, file: countsFiles[3]! }],
        minOccurrences,
        topTokens
      })
    ).toThrow(/odd-counts\.bin: layers and experts differs from .*counts-40\.bin: step 10 counts layers \[1, 3\]/)
  })
})
