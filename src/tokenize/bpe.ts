/**
 * The BPE merge step on token ids: a word starts as one id per byte and adjacent pairs are merged
 * lowest rank first (leftmost on ties), exactly the order of Hugging Face's `Word::merge_all`.
 */

const EMPTY = -1

/** Open-addressing hash table (pair of ids) -> (rank, merged id), on typed arrays. */
export class MergeTable {
  private readonly left: Int32Array
  private readonly right: Int32Array
  private readonly ranks: Int32Array
  private readonly merged: Int32Array
  private readonly mask: number
  /** Merged id of the last successful `rank` lookup. */
  lastMerged = 0

  constructor(pairs: ReadonlyArray<readonly [number, number, number]>) {
    let size = 16
    while (size < pairs.length * 2) size *= 2
    this.mask = size - 1
    this.left = new Int32Array(size).fill(EMPTY)
    this.right = new Int32Array(size)
    this.ranks = new Int32Array(size)
    this.merged = new Int32Array(size)
    pairs.forEach(([a, b, id], rank) => {
      let slot = this.slot(a, b)
      while (this.left[slot] !== EMPTY) {
        // A repeated pair keeps its first (lowest) rank, as the HF loader does.
        if (this.left[slot] === a && this.right[slot] === b) return
        slot = (slot + 1) & this.mask
      }
      this.left[slot] = a
      this.right[slot] = b
      this.ranks[slot] = rank
      this.merged[slot] = id
    })
  }

  private slot(a: number, b: number): number {
    return (Math.imul(a, 0x9e3779b1) ^ Math.imul(b, 0x85ebca6b)) >>> 0 & this.mask
  }

  /** Rank of merging (a, b), or -1; on success `lastMerged` holds the merged id. */
  rank(a: number, b: number): number {
    let slot = this.slot(a, b)
    for (;;) {
      const l = this.left[slot] as number
      if (l === EMPTY) return -1
      if (l === a && this.right[slot] === b) {
        this.lastMerged = this.merged[slot] as number
        return this.ranks[slot] as number
      }
      slot = (slot + 1) & this.mask
    }
  }
}

/** Below this many symbols a quadratic scan beats the heap. */
const SMALL_WORD = 48

/**
 * Merges `ids[0..length)` in place and returns the new length.
 */
export const mergeWord = (table: MergeTable, ids: Int32Array, length: number): number =>
  length <= SMALL_WORD ? mergeSmall(table, ids, length) : mergeLarge(table, ids, length)

let smallRanks = new Int32Array(SMALL_WORD)
let smallMerged = new Int32Array(SMALL_WORD)
const NO_MERGE = 0x7fffffff

/** Ranks of adjacent pairs are looked up once and refreshed only next to each merge. */
const mergeSmall = (table: MergeTable, ids: Int32Array, length: number): number => {
  if (smallRanks.length < length) {
    smallRanks = new Int32Array(length)
    smallMerged = new Int32Array(length)
  }
  const ranks = smallRanks
  const merged = smallMerged
  const refresh = (p: number): void => {
    const r = table.rank(ids[p] as number, ids[p + 1] as number)
    ranks[p] = r < 0 ? NO_MERGE : r
    merged[p] = table.lastMerged
  }
  let n = length
  for (let p = 0; p + 1 < n; p++) refresh(p)
  while (n > 1) {
    let best = 0
    let bestRank = ranks[0] as number
    for (let p = 1; p + 1 < n; p++) {
      if ((ranks[p] as number) < bestRank) {
        bestRank = ranks[p] as number
        best = p
      }
    }
    if (bestRank === NO_MERGE) break
    ids[best] = merged[best] as number
    ids.copyWithin(best + 1, best + 2, n)
    ranks.copyWithin(best + 1, best + 2, n - 1)
    merged.copyWithin(best + 1, best + 2, n - 1)
    n--
    if (best > 0) refresh(best - 1)
    if (best + 1 < n) refresh(best)
  }
  return n
}

/** Heap keys pack (rank, position) into one exactly representable double. */
const POS_SPAN = 4294967296

const mergeLarge = (table: MergeTable, ids: Int32Array, length: number): number => {
  const next = new Int32Array(length)
  const prev = new Int32Array(length)
  const alive = new Uint8Array(length).fill(1)
  for (let i = 0; i < length; i++) {
    next[i] = i + 1 < length ? i + 1 : -1
    prev[i] = i - 1
  }
  let heap = new Float64Array(length)
  let heapSize = 0
  const push = (key: number): void => {
    if (heapSize === heap.length) {
      const grown = new Float64Array(heap.length * 2)
      grown.set(heap)
      heap = grown
    }
    let i = heapSize++
    while (i > 0) {
      const parent = (i - 1) >> 1
      if ((heap[parent] as number) <= key) break
      heap[i] = heap[parent] as number
      i = parent
    }
    heap[i] = key
  }
  const pop = (): number => {
    const top = heap[0] as number
    const last = heap[--heapSize] as number
    let i = 0
    for (;;) {
      let child = 2 * i + 1
      if (child >= heapSize) break
      if (child + 1 < heapSize && (heap[child + 1] as number) < (heap[child] as number)) child++
      if ((heap[child] as number) >= last) break
      heap[i] = heap[child] as number
      i = child
    }
    heap[i] = last
    return top
  }
  const consider = (pos: number): void => {
    const nx = next[pos] as number
    if (nx < 0) return
    const r = table.rank(ids[pos] as number, ids[nx] as number)
    if (r >= 0) push(r * POS_SPAN + pos)
  }
  for (let i = 0; i + 1 < length; i++) consider(i)
  while (heapSize > 0) {
    const key = pop()
    const rank = Math.floor(key / POS_SPAN)
    const pos = key - rank * POS_SPAN
    if (alive[pos] === 0) continue
    const nx = next[pos] as number
    if (nx < 0) continue
    // Stale entry: the pair at `pos` changed since it was queued.
    if (table.rank(ids[pos] as number, ids[nx] as number) !== rank) continue
    ids[pos] = table.lastMerged
    alive[nx] = 0
    const nn = next[nx] as number
    next[pos] = nn
    if (nn >= 0) prev[nn] = pos
    const pv = prev[pos] as number
    if (pv >= 0) consider(pv)
    consider(pos)
  }
  let n = 0
  for (let i = 0; i >= 0; i = next[i] as number) ids[n++] = ids[i] as number
  return n
}
