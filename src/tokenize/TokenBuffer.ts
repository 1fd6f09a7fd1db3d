/** A growable array of token ids; the encoder appends to it without allocating per token. */
export class TokenBuffer {
  ids: Uint32Array
  length = 0

  constructor(capacity = 1024) {
    this.ids = new Uint32Array(capacity)
  }

  /** Makes room for `extra` more ids. */
  reserve(extra: number): void {
    if (this.length + extra > this.ids.length) this.grow(this.length + extra)
  }

  private grow(needed: number): void {
    let capacity = this.ids.length * 2
    while (capacity < needed) capacity *= 2
    const ids = new Uint32Array(capacity)
    ids.set(this.ids.subarray(0, this.length))
    this.ids = ids
  }

  push(id: number): void {
    if (this.length === this.ids.length) this.grow(this.length + 1)
    this.ids[this.length++] = id
  }

  pushAll(ids: ArrayLike<number>): void {
    const n = ids.length
    if (this.length + n > this.ids.length) this.grow(this.length + n)
    for (let i = 0; i < n; i++) this.ids[this.length + i] = ids[i] as number
    this.length += n
  }

  clear(): void {
    this.length = 0
  }

  /** A copy of the ids appended so far. */
  toArray(): Uint32Array {
    return this.ids.slice(0, this.length)
  }
}
