import { Data } from "effect"

/** A Megatron --moe-layer-freq string that is not of the form "[0]*1+[1]*8" (or a plain integer). */
export class MoeLayerFreqError extends Data.TaggedError("MoeLayerFreqError")<{
  readonly input: string
  /** 0-based character offset where parsing stopped. */
  readonly position: number
  readonly reason: string
}> {
  override get message(): string {
    return `moeLayerFreq ${JSON.stringify(this.input)} at character ${this.position}: ${this.reason}`
  }
}
