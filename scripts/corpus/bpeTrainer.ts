/**
 * A small, deterministic byte-level BPE trainer for the test fixtures. The `tokenizers` bindings
 * can train too, but their node API exposes no trainer options (vocab size, alphabet) and drops
 * bytes unseen in the corpus; training here keeps all 256 byte symbols and makes tie-breaking
 * explicit (highest count, then the lexicographically smallest pair), so the output only depends
 * on the input words.
 */

export interface TrainedBpe {
  /** Symbols in id order, starting with the 256 byte symbols given. */
  readonly symbols: ReadonlyArray<string>
  /** Merges in rank order, as pairs of symbol strings. */
  readonly merges: ReadonlyArray<readonly [string, string]>
}

interface Word {
  syms: Array<number>
  readonly count: number
}

const pairKey = (a: number, b: number): number => a * 65536 + b

/**
 * `words` maps each pre-token (already in byte-level symbol form, one symbol per char) to its
 * count; `alphabet` lists the initial symbols. Stops after `numMerges` merges or when no pair
 * occurs at least twice.
 */
export const trainBpe = (
  words: ReadonlyMap<string, number>,
  alphabet: ReadonlyArray<string>,
  numMerges: number
): TrainedBpe => {
  const symbols = [...alphabet]
  const idOf = new Map<string, number>(symbols.map((s, i) => [s, i]))
  const ws: Array<Word> = []
  for (const [w, count] of words) {
    const syms: Array<number> = []
    for (const ch of w) {
      const id = idOf.get(ch)
      if (id === undefined) throw new Error(`symbol ${JSON.stringify(ch)} is not in the alphabet`)
      syms.push(id)
    }
    ws.push({ syms, count })
  }

  const pairCount = new Map<number, number>()
  const pairWords = new Map<number, Set<number>>()
  const addWord = (wi: number, sign: number): void => {
    const w = ws[wi] as Word
    for (let i = 0; i + 1 < w.syms.length; i++) {
      const k = pairKey(w.syms[i] as number, w.syms[i + 1] as number)
      pairCount.set(k, (pairCount.get(k) ?? 0) + sign * w.count)
      if (sign > 0) {
        let set = pairWords.get(k)
        if (set === undefined) pairWords.set(k, set = new Set())
        set.add(wi)
      }
    }
  }
  for (let wi = 0; wi < ws.length; wi++) addWord(wi, 1)

  const merges: Array<readonly [string, string]> = []
  while (merges.length < numMerges) {
    let bestKey = -1
    let bestCount = 1
    let bestStr = ""
    for (const [k, c] of pairCount) {
      if (c < bestCount) continue
      const s = `${symbols[Math.floor(k / 65536)]} ${symbols[k % 65536]}`
      if (c > bestCount || bestKey < 0 || s < bestStr) {
        bestKey = k
        bestCount = c
        bestStr = s
      }
    }
    if (bestKey < 0) break
    const a = Math.floor(bestKey / 65536)
    const b = bestKey % 65536
    const merged = symbols.length
    const sa = symbols[a] as string
    const sb = symbols[b] as string
    symbols.push(sa + sb)
    merges.push([sa, sb])
    const affected = [...(pairWords.get(bestKey) ?? [])].sort((x, y) => x - y)
    for (const wi of affected) {
      const w = ws[wi] as Word
      addWord(wi, -1)
      const out: Array<number> = []
      for (let i = 0; i < w.syms.length; i++) {
        if (i + 1 < w.syms.length && w.syms[i] === a && w.syms[i + 1] === b) {
          out.push(merged)
          i++
        } else {
          out.push(w.syms[i] as number)
        }
      }
      w.syms = out
      addWord(wi, 1)
    }
    pairCount.delete(bestKey)
    pairWords.delete(bestKey)
    for (const [k, c] of pairCount) if (c === 0) pairCount.delete(k)
  }
  return { symbols, merges }
}
