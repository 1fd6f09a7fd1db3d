/**
 * CPython's `random.Random`, as far as the harness's few-shot sampler uses it: MT19937 seeded from an int,
 * `getrandbits`, `_randbelow` and `sample`. Reimplemented from the algorithms (Matsumoto & Nishimura's
 * init_by_array, CPython 3.11's seeding of ints and its two `sample` strategies) so that example selection
 * is bit-for-bit the one lm-evaluation-harness makes for the same seed.
 */

const N = 624
const M = 397
const MATRIX_A = 0x9908b0df
const UPPER_MASK = 0x80000000
const LOWER_MASK = 0x7fffffff

/** The 32-bit words of |seed|, least significant first, as CPython's random_seed() builds init_by_array's key. */
export const seedKey = (seed: number | bigint): ReadonlyArray<number> => {
  let n = BigInt(seed)
  if (n < 0n) n = -n
  if (n === 0n) return [0]
  const key: Array<number> = []
  while (n > 0n) {
    key.push(Number(n & 0xffffffffn))
    n >>= 32n
  }
  return key
}

export class PythonRandom {
  private readonly mt = new Uint32Array(N)
  private index = N + 1

  constructor(seed: number | bigint) {
    if (typeof seed === "number" && !Number.isInteger(seed)) {
      // CPython hashes floats (and strings) differently; the harness only ever passes ints.
      throw new TypeError(`only integer seeds are supported, got ${seed}`)
    }
    this.initByArray(seedKey(seed))
  }

  private initGenrand(s: number) {
    const mt = this.mt
    mt[0] = s >>> 0
    for (let i = 1; i < N; i++) {
      const prev = mt[i - 1]!
      mt[i] = (Math.imul(1812433253, (prev ^ (prev >>> 30)) >>> 0) + i) >>> 0
    }
    this.index = N
  }

  private initByArray(key: ReadonlyArray<number>) {
    const mt = this.mt
    this.initGenrand(19650218)
    let i = 1
    let j = 0
    for (let k = Math.max(N, key.length); k > 0; k--) {
      const prev = mt[i - 1]!
      mt[i] = ((mt[i]! ^ Math.imul((prev ^ (prev >>> 30)) >>> 0, 1664525)) + key[j]! + j) >>> 0
      i++
      j++
      if (i >= N) {
        mt[0] = mt[N - 1]!
        i = 1
      }
      if (j >= key.length) j = 0
    }
    for (let k = N - 1; k > 0; k--) {
      const prev = mt[i - 1]!
      mt[i] = ((mt[i]! ^ Math.imul((prev ^ (prev >>> 30)) >>> 0, 1566083941)) - i) >>> 0
      i++
      if (i >= N) {
        mt[0] = mt[N - 1]!
        i = 1
      }
    }
    mt[0] = 0x80000000
  }

  private twist() {
    const mt = this.mt
    const mag = (y: number) => (y & 1) === 0 ? 0 : MATRIX_A
    let kk = 0
    for (; kk < N - M; kk++) {
      const y = (mt[kk]! & UPPER_MASK) | (mt[kk + 1]! & LOWER_MASK)
      mt[kk] = mt[kk + M]! ^ (y >>> 1) ^ mag(y)
    }
    for (; kk < N - 1; kk++) {
      const y = (mt[kk]! & UPPER_MASK) | (mt[kk + 1]! & LOWER_MASK)
      mt[kk] = mt[kk + (M - N)]! ^ (y >>> 1) ^ mag(y)
    }
    const y = (mt[N - 1]! & UPPER_MASK) | (mt[0]! & LOWER_MASK)
    mt[N - 1] = mt[M - 1]! ^ (y >>> 1) ^ mag(y)
    this.index = 0
  }

  /** genrand_uint32: the next tempered 32-bit output. */
  nextUint32(): number {
    if (this.index >= N) this.twist()
    let y = this.mt[this.index++]!
    y ^= y >>> 11
    y ^= (y << 7) & 0x9d2c5680
    y ^= (y << 15) & 0xefc60000
    y ^= y >>> 18
    return y >>> 0
  }

  /** random.getrandbits(k) for 0 <= k <= 32 (one 32-bit output, its top k bits). */
  getrandbits(k: number): number {
    if (!Number.isInteger(k) || k < 0 || k > 32) throw new RangeError(`getrandbits(${k}): 0 <= k <= 32 supported`)
    if (k === 0) return 0
    return this.nextUint32() >>> (32 - k)
  }

  /** random.random(): 53-bit float from two outputs (a >> 5, b >> 6), as CPython does. */
  random(): number {
    const a = this.nextUint32() >>> 5
    const b = this.nextUint32() >>> 6
    return (a * 67108864 + b) / 9007199254740992
  }

  /** Random._randbelow_with_getrandbits: rejection sampling on bit_length(n) bits. */
  randbelow(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 0xffffffff) throw new RangeError(`randbelow(${n})`)
    const k = 32 - Math.clz32(n) // n.bit_length()
    let r = this.getrandbits(k)
    while (r >= n) r = this.getrandbits(k)
    return r
  }

  /**
   * Random.sample(population, k) of CPython 3.11: k distinct elements, in selection order. For small
   * populations it draws from a shrinking pool (swap-remove); for large ones it draws indices and rejects
   * repeats with a set. Both paths consume the generator differently, so the threshold must match exactly.
   */
  sample<A>(population: ReadonlyArray<A>, k: number): Array<A> {
    const n = population.length
    if (!Number.isInteger(k) || k < 0 || k > n) throw new RangeError("Sample larger than population or is negative")
    const result: Array<A> = []
    let setsize = 21 // size of a small set minus size of an empty list
    if (k > 5) setsize += 4 ** Math.ceil(Math.log(k * 3) / Math.log(4)) // table size for big sets
    if (n <= setsize) {
      const pool = population.slice()
      for (let i = 0; i < k; i++) {
        const j = this.randbelow(n - i)
        result.push(pool[j]!)
        pool[j] = pool[n - i - 1]!
      }
    } else {
      const selected = new Set<number>()
      for (let i = 0; i < k; i++) {
        let j = this.randbelow(n)
        while (selected.has(j)) j = this.randbelow(n)
        selected.add(j)
        result.push(population[j]!)
      }
    }
    return result
  }
}
