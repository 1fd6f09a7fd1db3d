/**
 * The native encoder (native/tokenizer: C++ through Node-API), built by `npm install` into
 * native/tokenizer/build/flame_tokenizer.node. When it is missing, fails to load, was built for
 * another interface version or is older than its sources, the TypeScript encoder is used instead
 * (same ids, slower); FLAME_TOKENIZER=js forces that. Loaded by absolute path from the project
 * root, so the sources, the bundled CLI and worker threads all find the same file.
 */
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import { fromRoot } from "../ProjectRoot.ts"

/** Must equal kApiVersion in native/tokenizer/src/addon.cpp. */
export const NATIVE_API_VERSION = 1

export const nativeAddonPath: string = fromRoot("native", "tokenizer", "build", "flame_tokenizer.node")

/** What the C++ Encoder is built from (EncoderConfig in native/tokenizer/src/encoder.h). */
export interface NativeEncoderConfig {
  /** 0x110000 entries: pre-tokenizer class | 4 when NFC leaves the code point alone. */
  readonly classes: Uint8Array
  readonly byteIds: Int32Array
  /** (left, right, merged) id triples in rank order. */
  readonly merges: Int32Array
  readonly rawAdded: ReadonlyArray<string>
  readonly rawAddedIds: Uint32Array
  readonly normalizedAdded: ReadonlyArray<string>
  readonly normalizedAddedIds: Uint32Array
  /** With ignore_merges: vocabulary tokens as bytes, concatenated, with their end offsets and ids. */
  readonly wholeTokenBytes: Uint8Array
  readonly wholeTokenEnds: Uint32Array
  readonly wholeTokenIds: Uint32Array
  readonly prefix: Uint32Array
  readonly suffix: Uint32Array
  readonly addPrefixSpace: boolean
  readonly useRegex: boolean
  readonly ignoreMerges: boolean
  /** 0: no normalizer; 1: NFC only; 2: anything else. */
  readonly normalization: 0 | 1 | 2
  readonly eod: number
}

declare const EncoderBrand: unique symbol
export interface EncoderHandle {
  readonly [EncoderBrand]: true
}

/** The addon's exports; the calls are documented in native/tokenizer/src/addon.cpp. */
export interface NativeTokenizerAddon {
  readonly apiVersion: number
  createEncoder(config: NativeEncoderConfig): EncoderHandle
  encodeText(encoder: EncoderHandle, text: string, out: Uint32Array, at: number): number
  encodeNormalized(encoder: EncoderHandle, text: string, out: Uint32Array, at: number): number
  encodeLines(
    encoder: EncoderHandle,
    block: Uint8Array,
    start: number,
    key: string,
    ids: Uint32Array,
    lines: Int32Array
  ): number
}

export type NativeAddonStatus =
  | { readonly _tag: "Loaded"; readonly addon: NativeTokenizerAddon; readonly path: string }
  | { readonly _tag: "Unavailable"; readonly reason: string }

/** The newest modification time of the addon's sources, or 0 where they are not around. */
const newestSource = (): number => {
  const dir = fromRoot("native", "tokenizer")
  try {
    const files = [
      path.join(dir, "Makefile"),
      ...fs.readdirSync(path.join(dir, "src")).map((f) => path.join(dir, "src", f))
    ]
    return Math.max(...files.map((f) => fs.statSync(f).mtimeMs))
  } catch {
    return 0
  }
}

const load = (): NativeAddonStatus => {
  if (process.env.FLAME_TOKENIZER === "js") return { _tag: "Unavailable", reason: "FLAME_TOKENIZER=js" }
  if (!fs.existsSync(nativeAddonPath)) {
    return {
      _tag: "Unavailable",
      reason: `${nativeAddonPath} is not built (npm run build:tokenizer; see native/tokenizer/README.md)`
    }
  }
  // An addon older than its sources may encode differently from them: not worth the risk.
  if (fs.statSync(nativeAddonPath).mtimeMs < newestSource()) {
    return {
      _tag: "Unavailable",
      reason: `${nativeAddonPath} is older than its sources (rebuild with npm run build:tokenizer)`
    }
  }
  let addon: NativeTokenizerAddon
  try {
    addon = createRequire(import.meta.url)(nativeAddonPath) as NativeTokenizerAddon
  } catch (e) {
    return { _tag: "Unavailable", reason: `${nativeAddonPath} does not load: ${(e as Error).message}` }
  }
  if (addon.apiVersion !== NATIVE_API_VERSION) {
    return {
      _tag: "Unavailable",
      reason: `${nativeAddonPath} has interface version ${addon.apiVersion}, this code needs ${NATIVE_API_VERSION} ` +
        `(rebuild with npm run build:tokenizer)`
    }
  }
  return { _tag: "Loaded", addon, path: nativeAddonPath }
}

let status: NativeAddonStatus | undefined

/** Loads the addon on first use (once per thread). */
export const nativeAddonStatus = (): NativeAddonStatus => status ??= load()
