/**
 * Megatron's --moe-layer-freq. Megatron accepts either an integer N (every N-th layer, starting with layer 0,
 * is MoE) or a Python list expression such as "[0]*1+[1]*8" that it `eval`s. We never eval: this is a small
 * parser for the subset of that expression language the FLAME-MoE scripts use: a sum of list literals of 0/1,
 * each optionally repeated with `*count`.
 */
import { Either } from "effect"
import { MoeLayerFreqError } from "./errors.ts"

/** `true` at index i when layer i is an MoE layer. */
export type MoeLayerPattern = ReadonlyArray<boolean>

export const parseMoeLayerFreq = (
  input: string,
  numLayers?: number
): Either.Either<MoeLayerPattern, MoeLayerFreqError> => {
  const fail = (position: number, reason: string) => Either.left(new MoeLayerFreqError({ input, position, reason }))
  const text = input.trim()
  const offset = input.length - input.trimStart().length
  if (text.length === 0) return fail(0, "empty string")

  if (/^\d+$/.test(text)) {
    // Integer form: Megatron builds [1 if i % N == 0 else 0 for i in range(num_layers)].
    const every = Number(text)
    if (every < 1) return fail(offset, "the integer form must be at least 1")
    if (numLayers === undefined) return fail(offset, "the integer form needs the number of layers")
    return Either.right(Array.from({ length: numLayers }, (_, i) => i % every === 0))
  }

  const pattern: Array<boolean> = []
  let i = 0
  const skipSpaces = () => {
    while (i < text.length && text[i] === " ") i++
  }
  const expect = (ch: string) => {
    skipSpaces()
    if (text[i] !== ch) return false
    i++
    return true
  }
  for (;;) {
    skipSpaces()
    if (!expect("[")) return fail(offset + i, "expected '['")
    const items: Array<boolean> = []
    for (;;) {
      skipSpaces()
      const ch = text[i]
      if (ch !== "0" && ch !== "1") return fail(offset + i, "list items must be 0 or 1")
      items.push(ch === "1")
      i++
      skipSpaces()
      if (text[i] === ",") {
        i++
        continue
      }
      break
    }
    if (!expect("]")) return fail(offset + i, "expected ']' or ','")
    let count = 1
    skipSpaces()
    if (text[i] === "*") {
      i++
      skipSpaces()
      const digits = /^\d+/.exec(text.slice(i))
      if (digits === null) return fail(offset + i, "expected a repeat count after '*'")
      count = Number(digits[0])
      i += digits[0].length
    }
    for (let r = 0; r < count; r++) pattern.push(...items)
    skipSpaces()
    if (i === text.length) break
    if (text[i] !== "+") return fail(offset + i, "expected '+' or the end of the expression")
    i++
  }
  if (pattern.length === 0) return fail(offset, "the pattern has no layers")
  if (numLayers !== undefined && pattern.length !== numLayers) {
    return fail(offset, `the pattern has ${pattern.length} layers but the model has ${numLayers}`)
  }
  return Either.right(pattern)
}

/** For data we ship (and test): a bad string there is a programming error, not user input. */
export const moeLayerPatternOf = (moeLayerFreq: string, numLayers: number): MoeLayerPattern =>
  Either.getOrThrow(parseMoeLayerFreq(moeLayerFreq, numLayers))

/** The Megatron string for "first layer dense, the rest MoE", as every FLAME-MoE model uses. */
export const denseFirstLayerFreq = (numLayers: number): string => `[0]*1+[1]*${numLayers - 1}`
