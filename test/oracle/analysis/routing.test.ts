/**
 * The four routing analyses against a numpy rendering of their definitions
 * (bench/analysis/routing_numpy.py) on synthetic traces.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { writeSyntheticTraces } from "../../../bench/analysis/synthetic.ts"
import { expertCoactivation } from "../../../src/analysis/coactivation.ts"
import { loadBalance } from "../../../src/analysis/loadBalance.ts"
import { routerSaturation } from "../../../src/analysis/saturation.ts"
import { expertSpecialization } from "../../../src/analysis/specialization.ts"
import { readSpecializationCounts } from "../../../src/analysis/specializationCounts.ts"
import { pythonWith } from "../../support/python.ts"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fp-routing-"))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))
const oracle = path.join(import.meta.dirname, "../../../bench/analysis/routing_numpy.py")

// FLAME-MoE's top-6 of 64 (the unrolled kernels) and top-4 of 48 (the general loops, the slow id check).
describe.each([{ topK: 6, numExperts: 64 }, { topK: 4, numExperts: 48 }])(
  "the four analyses against a numpy rendering of their definitions, top-$topK of $numExperts",
  ({ numExperts, topK }) => {
    const o = { numTokens: 3 * 1000, vocabSize: 300, numExperts, topK, numLayers: 2, seqLength: 50, seed: 7 }
    const ks = topK === 6 ? [6, 4, 2, 1] : [4, 3, 1]
    const final = path.join(dir, `syn-final-${topK}.bin`)
    const early = path.join(dir, `syn-early-${topK}.bin`)
    const middle = path.join(dir, `syn-middle-${topK}.bin`)
    // Chunks of 700 tokens for the writer and 333 for the readers: both cross chunk boundaries mid-sample.
    writeSyntheticTraces(o, { final, earlier: [{ file: early, change: 0.7 }, { file: middle, change: 0.3 }] }, 700)
    const checkpoints = [{ step: 10, file: early }, { step: 20, file: middle }, { step: 30, file: final }]
    const chunkTokens = 333

    const numpy = JSON.parse(
      execFileSync(
        pythonWith("numpy"),
        [
          oracle,
          ...["--final", final, "--checkpoint", early, "--checkpoint", middle, "--vocab", "300"],
          ...["--ks", ks.join(",")]
        ],
        {
          encoding: "utf8",
          maxBuffer: 1 << 28
        }
      )
    ) as {
      saturation: Array<Array<Array<number>>>
      load: Array<Array<{ fractions: Array<number>; cv: number; entropy: number; maxOverMean: number }>>
      coactivation: Array<{ activations: Array<number>; matrix: Array<Array<number>> }>
      specialization: { tokenIds: Array<number>; occurrences: Array<number>; routed: Array<Array<number>> }
    }

    const close = (a: ReadonlyArray<number>, b: ReadonlyArray<number>, what: string) => {
      expect(a.length, what).toBe(b.length)
      a.forEach((x, i) => expect(Math.abs(x - b[i]!), `${what}[${i}]`).toBeLessThan(1e-12))
    }

    it("router saturation", () => {
      const ts = routerSaturation({ scale: "s", checkpoints, ks, chunkTokens })
      ts.saturation.forEach((layer, l) =>
        layer.forEach((row, c) => close(row, numpy.saturation[l]![c]!, `l${l} c${c}`))
      )
      // The synthetic checkpoints are built to agree more and more with the final one.
      expect(ts.saturation[0]![0]![0]!).toBeLessThan(ts.saturation[0]![1]![0]!)
    })

    it("load balance", () => {
      const ts = loadBalance({ scale: "s", checkpoints, chunkTokens })
      numpy.load.forEach((layer, l) =>
        layer.forEach((s, c) => {
          close(ts.fractions[l]![c]!, s.fractions, `fractions l${l} c${c}`)
          close([ts.cv[l]![c]!, ts.entropy[l]![c]!, ts.maxOverMean[l]![c]!], [s.cv, s.entropy, s.maxOverMean], "stats")
        })
      )
    })

    it("expert co-activation", () => {
      const ts = expertCoactivation({ scale: "s", step: 30, file: final, chunkTokens })
      numpy.coactivation.forEach((layer, l) => {
        close(ts.activations[l]!, layer.activations, `activations l${l}`)
        layer.matrix.forEach((row, i) => close(ts.matrix[l]![i]!, row, `matrix l${l} row ${i}`))
      })
    })

    it("expert specialization: full counts and the summary", () => {
      const countsFile = path.join(dir, `syn-${topK}.counts`)
      const summary = expertSpecialization({
        scale: "s",
        step: 30,
        file: final,
        vocabSize: 300,
        minOccurrences: 5,
        topTokens: 4,
        countsFile,
        chunkTokens
      })
      const counts = readSpecializationCounts(countsFile)
      expect(Array.from(counts.tokenIds)).toEqual(numpy.specialization.tokenIds)
      expect(Array.from(counts.occurrences)).toEqual(numpy.specialization.occurrences)
      counts.routed.forEach((r, l) => expect(Array.from(r), `layer ${l}`).toEqual(numpy.specialization.routed[l]))
      // The summary's best token for each expert is the arg-max of routed / occurrences over eligible tokens.
      const E = numExperts
      const l0 = counts.routed[0]!
      for (let e = 0; e < E; e++) {
        let best = -1
        counts.tokenIds.forEach((_, u) => {
          if (counts.occurrences[u]! < 5) return
          best = Math.max(best, l0[u * E + e]! / counts.occurrences[u]!)
        })
        const top = summary.perLayer[0]!.experts[e]!.top
        if (best <= 0) expect(top).toEqual([])
        else expect(top[0]!.score).toBe(best)
        for (let i = 1; i < top.length; i++) expect(top[i]!.score).toBeLessThanOrEqual(top[i - 1]!.score)
      }
      expect(summary.distinctTokens).toBe(numpy.specialization.tokenIds.length)
    })
  }
)
