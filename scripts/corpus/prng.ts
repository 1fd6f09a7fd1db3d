/**
 * A small seeded PRNG (splitmix32) so every generated corpus and test document is reproducible
 * from its seed alone, independent of the platform's Math.random.
 */
export interface Rng {
  /** Uniform float in [0, 1). */
  readonly next: () => number
  /** Uniform integer in [0, n). */
  readonly int: (n: number) => number
  /** One element of a non-empty array. */
  readonly pick: <A>(items: ReadonlyArray<A>) => A
}

export const makeRng = (seed: number): Rng => {
  let state = seed >>> 0
  const nextU32 = (): number => {
    state = (state + 0x9e3779b9) >>> 0
    let z = state
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
    return (z ^ (z >>> 16)) >>> 0
  }
  const next = (): number => nextU32() / 4294967296
  const int = (n: number): number => Math.floor(next() * n)
  const pick = <A>(items: ReadonlyArray<A>): A => items[int(items.length)] as A
  return { next, int, pick }
}
