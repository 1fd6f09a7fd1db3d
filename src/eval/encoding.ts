/**
 * Turning a (context, continuation) string pair into tokens, by the harness's rule for causal models
 * (TemplateLM.loglikelihood and HFLM._encode_pair):
 *
 * - an empty context is replaced by the end-of-document token, and the continuation is encoded alone;
 * - otherwise trailing whitespace of the context moves to the front of the continuation, then
 *   whole = encode(context + continuation), ctx = encode(context), continuation tokens = whole[len(ctx):].
 *   Encoding the pair together is what makes " Paris" after "Answer:" the same tokens as in running text.
 *
 * The encoder is a parameter: the project's BPE tokenizer lives elsewhere.
 */
import { pyRstrip } from "./pythonString.ts"

export interface Encoder {
  readonly encode: (text: string) => ArrayLike<number>
  /** Prefix for an empty context (the harness's prefix_token_id: EOT/EOD for GPT-NeoX tokenizers). */
  readonly eodId: number
}

export interface EncodedPair {
  readonly context: ReadonlyArray<number>
  readonly continuation: ReadonlyArray<number>
}

/** Moves the context's trailing whitespace (Python's str.rstrip set) to the continuation. */
export const moveTrailingWhitespace = (
  context: string,
  continuation: string
): { readonly context: string; readonly continuation: string } => {
  const stripped = pyRstrip(context)
  return { context: stripped, continuation: context.slice(stripped.length) + continuation }
}

export const encodePair = (encoder: Encoder, context: string, continuation: string): EncodedPair => {
  if (context === "") return { context: [encoder.eodId], continuation: Array.from(encoder.encode(continuation)) }
  const moved = moveTrailingWhitespace(context, continuation)
  const whole = Array.from(encoder.encode(moved.context + moved.continuation))
  const contextLength = encoder.encode(moved.context).length
  return { context: whole.slice(0, contextLength), continuation: whole.slice(contextLength) }
}

/**
 * What the model actually sees for a pair under a context window of `maxLength` tokens: the harness keeps
 * the last maxLength + 1 tokens of context + continuation, feeds all but the last, and sums the
 * log-probabilities of the last `continuationLength` positions. Context is cut from the left.
 */
export interface ScoringWindow {
  /** Tokens t_0..t_m; the model reads t_0..t_{m-1} and predicts t_1..t_m. */
  readonly tokens: ReadonlyArray<number>
  /** The score is sum over the last continuationLength tokens t_i of log p(t_i | t_<i). */
  readonly continuationLength: number
}

export const scoringWindow = (pair: EncodedPair, maxLength: number): ScoringWindow => {
  if (pair.continuation.length > maxLength) {
    throw new RangeError(`continuation of ${pair.continuation.length} tokens exceeds the ${maxLength}-token window`)
  }
  const all = [...pair.context, ...pair.continuation]
  return { tokens: all.slice(Math.max(0, all.length - (maxLength + 1))), continuationLength: pair.continuation.length }
}
