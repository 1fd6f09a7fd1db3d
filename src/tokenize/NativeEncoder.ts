/**
 * One tokenizer's native encoder: the C++ half of ByteLevelBpe when the addon is built. It takes
 * text whose normalization is the identity (nearly all of it) whole, and already normalized
 * segments from the TypeScript side otherwise; ids go straight into the caller's typed arrays.
 */
import type { EncoderHandle, NativeEncoderConfig, NativeTokenizerAddon } from "./nativeAddon.ts"
import type { TokenBuffer } from "./TokenBuffer.ts"

export class NativeEncoder {
  private readonly handle: EncoderHandle

  constructor(private readonly addon: NativeTokenizerAddon, config: NativeEncoderConfig) {
    this.handle = addon.createEncoder(config)
  }

  /**
   * Appends the ids of `text` (added tokens, pre-tokenizer, BPE; no template) to `out`. Returns
   * false, appending nothing, when the text must be normalized first.
   */
  encodeText(text: string, out: TokenBuffer): boolean {
    for (;;) {
      const r = this.addon.encodeText(this.handle, text, out.ids, out.length)
      if (r >= 0) {
        out.length = r
        return true
      }
      if (r === -1) return false
      out.reserve(-r - out.length)
    }
  }

  /** Appends the ids of a normalized segment without added tokens (pre-tokenizer and BPE). */
  encodeNormalized(text: string, out: TokenBuffer): void {
    for (;;) {
      const r = this.addon.encodeNormalized(this.handle, text, out.ids, out.length)
      if (r >= 0) {
        out.length = r
        return
      }
      out.reserve(-r - out.length)
    }
  }

  /**
   * Encodes the jsonl lines of `block[start..]` (valid UTF-8) as documents into `ids`; for line k,
   * `lines[2k]` is its end offset and `lines[2k+1]` its id count, or -1 when the line is left to
   * the caller (bad input, or text that needs normalizing). Returns the number of lines done: 0
   * when `ids` is too small for the next line.
   */
  encodeLines(block: Uint8Array, start: number, key: string, ids: Uint32Array, lines: Int32Array): number {
    return this.addon.encodeLines(this.handle, block, start, key, ids, lines)
  }
}
