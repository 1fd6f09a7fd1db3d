/** The tokenization library: what the engine's tokenize and merge stages call. */
export { BadInputError, type BadInputReason, ShardIoError, TokenizerLoadError } from "./errors.ts"
export { isZstdFile, type ZstdDecoder } from "./jsonlSource.ts"
export {
  type ParallelOptions,
  type ShardJob,
  type ShardResult,
  tokenizeOnWorker,
  tokenizeShardsInParallel
} from "./parallel.ts"
export { TokenBuffer } from "./TokenBuffer.ts"
export { ByteLevelBpe, type Implementation, type LoadOptions, loadTokenizer, tokenizerFromJson } from "./Tokenizer.ts"
export {
  BadLines,
  megatronOutputPrefix,
  OnBadLine,
  ShardStats,
  tokenizeShard,
  type TokenizeShardOptions
} from "./tokenizeShard.ts"
