/**
 * GPT-2's byte-to-unicode table: byte-level BPE vocabularies spell every byte as a printable
 * character so that tokens are strings. Printable Latin-1 bytes map to themselves; the other 68
 * bytes map, in byte order, to U+0100 onwards.
 */
const buildByteToChar = (): ReadonlyArray<string> => {
  const table: Array<string> = []
  let extra = 0
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff)
    table.push(String.fromCharCode(printable ? b : 256 + extra++))
  }
  return table
}

export const BYTE_TO_CHAR: ReadonlyArray<string> = buildByteToChar()

export const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]))

/** Spells UTF-8 bytes in byte-level symbols. */
export const bytesToSymbols = (bytes: Uint8Array): string => {
  let s = ""
  for (let i = 0; i < bytes.length; i++) s += BYTE_TO_CHAR[bytes[i] as number]
  return s
}

/** Inverse of bytesToSymbols; undefined when a character is not a byte symbol. */
export const symbolsToBytes = (symbols: string): Uint8Array | undefined => {
  const out = new Uint8Array(symbols.length)
  for (let i = 0; i < symbols.length; i++) {
    const b = CHAR_TO_BYTE.get(symbols.charAt(i))
    if (b === undefined) return undefined
    out[i] = b
  }
  return out
}
