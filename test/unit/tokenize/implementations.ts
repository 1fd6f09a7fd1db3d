/**
 * The encoders under test: the TypeScript one always, the native one (C++ addon) when it loads.
 * Every oracle test (test/oracle/tokenize) runs once per encoder.
 */
import { Either } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { nativeAddonStatus } from "../../../src/tokenize/nativeAddon.ts"
import { type ByteLevelBpe, tokenizerFromJson } from "../../../src/tokenize/Tokenizer.ts"

export type TestedImplementation = "js" | "native"

export const FIXTURE = path.join(import.meta.dirname, "..", "..", "..", "fixtures", "tokenizer", "tokenizer.json")

export const nativeStatus = nativeAddonStatus()

export const IMPLEMENTATIONS: ReadonlyArray<TestedImplementation> = nativeStatus._tag === "Loaded"
  ? ["js", "native"]
  : ["js"]

/**
 * Where the addon must be built and in use: on Linux (CI included), unless the build was skipped
 * or the TypeScript encoder forced on purpose.
 */
export const NATIVE_REQUIRED = process.platform === "linux" && process.env.FLAME_SKIP_TOKENIZER_BUILD !== "1" &&
  process.env.FLAME_TOKENIZER !== "js"

export const loadFixture = (implementation: TestedImplementation): ByteLevelBpe =>
  Either.getOrThrow(tokenizerFromJson(fs.readFileSync(FIXTURE), FIXTURE, { implementation }))
