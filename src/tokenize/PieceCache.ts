/**
 * Cache of pre-token -> ids, keyed by the characters of `text[start, end)` without building a
 * substring. Natural text repeats its pieces, so almost every piece is a hit, and the hit path is
 * bound by memory latency: each slot is one 64-byte cache line holding the hash, the key (up to
 * 12 UTF-16 units, two per int) and the ids (up to 8) inline. Longer keys or id lists are not
 * cached. When half the slots are used the cache is dropped (cheap; the encoding stays exact).
 *
 * The main table (8 MiB) does not stay in the core's caches, so a small direct-mapped front table
 * (256 KiB) holds recently used slots: the frequent pieces of natural text hit there.
 */

const SLOT_BITS = 17
const SLOTS = 1 << SLOT_BITS
const MAX_ENTRIES = SLOTS >> 1
/** Int32s per slot: hash, length word, 6 key words, 8 ids. */
const STRIDE = 16
const KEY_AT = 2
const IDS_AT = 8
export const MAX_KEY_CHARS = 12
export const MAX_IDS = 8
const FRONT_SLOTS = 1 << 12
export const HASH_SEED = 0x811c9dc5
export const HASH_PRIME = 0x01000193

export class PieceCache {
  /** Slot data; a zero hash word marks an empty slot (stored hashes are forced odd). */
  private readonly table: Int32Array
  /** Copies of recently used slots; `find` answers with a base into this table. */
  readonly front: Int32Array
  private entries = 0

  constructor() {
    // ArrayBuffers are allocated aligned, so each slot is exactly one cache line.
    this.table = new Int32Array(SLOTS * STRIDE)
    this.front = new Int32Array(FRONT_SLOTS * STRIDE)
  }

  /** FNV-1a over the UTF-16 code units, then the length: the scanner computes it on the fly. */
  static hash(text: string, start: number, end: number): number {
    let h = HASH_SEED
    for (let i = start; i < end; i++) h = Math.imul(h ^ text.charCodeAt(i), HASH_PRIME)
    return PieceCache.finishHash(h, end - start)
  }

  static finishHash(h: number, length: number): number {
    const x = Math.imul(h ^ length, HASH_PRIME)
    return (x ^ (x >>> 15)) | 1
  }

  /** Whether slot `base` of `table` holds `text[start, end)`. */
  private static holds(
    table: Int32Array,
    base: number,
    text: string,
    start: number,
    end: number,
    hash: number
  ): boolean {
    if (table[base] !== hash || ((table[base + 1] as number) & 0xff) !== end - start) return false
    let k = base + KEY_AT
    let i = start
    for (; i + 1 < end; i += 2, k++) {
      if (table[k] !== (text.charCodeAt(i) | (text.charCodeAt(i + 1) << 16))) return false
    }
    return i === end || table[k] === text.charCodeAt(i)
  }

  /**
   * Base offset in `front` of the slot holding `text[start, end)` (its ids are at
   * `front[base + IDS_AT ..]`, their count `idCount(base)`), or, when absent, the bitwise
   * complement of the main-table slot where `insert` will put it.
   */
  find(text: string, start: number, end: number, hash: number): number {
    const frontBase = ((hash >>> 7) & (FRONT_SLOTS - 1)) * STRIDE
    if (PieceCache.holds(this.front, frontBase, text, start, end, hash)) return frontBase
    const table = this.table
    let slot = hash & (SLOTS - 1)
    for (;;) {
      const base = slot * STRIDE
      const h = table[base] as number
      if (h === 0) return ~base
      if (h === hash && PieceCache.holds(table, base, text, start, end, hash)) {
        this.front.set(table.subarray(base, base + STRIDE), frontBase)
        return frontBase
      }
      slot = (slot + 1) & (SLOTS - 1)
    }
  }

  idCount(base: number): number {
    return (this.front[base + 1] as number) >>> 8
  }

  idsAt(base: number): number {
    return base + IDS_AT
  }

  /** Stores ids for a key whose `find` returned `notFound`; returns its base in `front`. */
  insert(
    text: string,
    start: number,
    end: number,
    hash: number,
    notFound: number,
    ids: Int32Array,
    count: number
  ): number {
    let base = ~notFound
    if (this.entries >= MAX_ENTRIES) {
      this.clear()
      base = ~this.find(text, start, end, hash)
    }
    this.entries++
    const table = this.table
    table[base] = hash
    table[base + 1] = (end - start) | (count << 8)
    let k = base + KEY_AT
    let i = start
    for (; i + 1 < end; i += 2) table[k++] = text.charCodeAt(i) | (text.charCodeAt(i + 1) << 16)
    if (i < end) table[k] = text.charCodeAt(i)
    for (let j = 0; j < count; j++) table[base + IDS_AT + j] = ids[j] as number
    const frontBase = ((hash >>> 7) & (FRONT_SLOTS - 1)) * STRIDE
    this.front.set(table.subarray(base, base + STRIDE), frontBase)
    return frontBase
  }

  get size(): number {
    return this.entries
  }

  clear(): void {
    this.table.fill(0)
    this.front.fill(0)
    this.entries = 0
  }
}
