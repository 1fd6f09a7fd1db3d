import { execFileSync } from "node:child_process"
import { beforeAll, describe, expect, it } from "vitest"
import { PythonRandom, seedKey } from "../../../src/eval/pythonRandom.ts"

const streamSeeds = [0, 1, 42, 1234, 2 ** 32 + 17, 123456789012]
const bitWidths = [1, 3, 5, 31, 32, 0, 17]
const sampleSeeds = [42, 1234, 0, 99]
// (population size, k): pool path when n <= setsize (21, or 21 + 4^ceil(log4(3k)) for k > 5), set path
// otherwise; the boundary cases sit on either side of it (k = 10 -> setsize 85).
const sampleCases: ReadonlyArray<readonly [number, number]> = [
  [12, 10],
  [12, 11],
  [21, 5],
  [22, 5],
  [85, 10],
  [86, 10],
  [1000, 10],
  [1000, 11],
  [40000, 10],
  [5, 5],
  [3, 0],
  [1, 1]
]

// CPython is the independent oracle. One interpreter run for the whole file keeps it fast.
const oracleScript = `
import json, random
def stream(s):
    r = random.Random(s)
    return [r.getrandbits(32) for _ in range(701)] + [r.random() for _ in range(3)]
def bits():
    r = random.Random(7)
    return [r.getrandbits(k) for k in ${JSON.stringify(bitWidths)}]
def samples(s):
    r = random.Random(s)
    return [r.sample(range(n), k) for n, k in ${JSON.stringify(sampleCases)}] + [r.getrandbits(32)]
print(json.dumps({
    "streams": [stream(s) for s in ${JSON.stringify(streamSeeds)}],
    "bits": bits(),
    "samples": [samples(s) for s in ${JSON.stringify(sampleSeeds)}],
}))
`

interface Oracle {
  readonly streams: Array<Array<number>>
  readonly bits: Array<number>
  readonly samples: Array<Array<unknown>>
}
let oracle: Oracle

beforeAll(() => {
  oracle = JSON.parse(execFileSync("python3", ["-c", oracleScript], { encoding: "utf8" })) as Oracle
})

describe("PythonRandom against CPython", () => {
  it("splits seeds into 32-bit words like random.seed(int)", () => {
    expect(seedKey(42)).toEqual([42])
    expect(seedKey(0)).toEqual([0])
    expect(seedKey(-7)).toEqual([7])
    expect(seedKey(2n ** 32n + 5n)).toEqual([5, 1])
  })

  it("produces the same 32-bit stream and floats for several seeds", () => {
    streamSeeds.forEach((seed, i) => {
      const r = new PythonRandom(seed)
      // 701 draws cross a twist of the 624-word state.
      const stream = [...Array.from({ length: 701 }, () => r.getrandbits(32)), r.random(), r.random(), r.random()]
      expect(stream, `seed ${seed}`).toEqual(oracle.streams[i])
    })
  })

  it("matches getrandbits of small widths (the top bits of one output)", () => {
    const r = new PythonRandom(7)
    expect(bitWidths.map((k) => r.getrandbits(k))).toEqual(oracle.bits)
  })

  it("matches random.sample on both of its algorithms, consuming the stream identically", () => {
    sampleSeeds.forEach((seed, i) => {
      const r = new PythonRandom(seed)
      const got = [
        ...sampleCases.map(([n, k]) => r.sample(Array.from({ length: n }, (_, j) => j), k)),
        r.getrandbits(32)
      ]
      expect(got, `seed ${seed}`).toEqual(oracle.samples[i])
    })
  })
})
