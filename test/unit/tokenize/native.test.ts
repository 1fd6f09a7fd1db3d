import { it } from "@effect/vitest"
import { Effect } from "effect"
import { describe, expect } from "vitest"
import { loadTokenizer } from "../../../src/tokenize/Tokenizer.ts"
import { FIXTURE, NATIVE_REQUIRED, nativeStatus } from "./implementations.ts"

describe("the native encoder", () => {
  it.effect.runIf(NATIVE_REQUIRED)(
    "is built and used by default (set FLAME_SKIP_TOKENIZER_BUILD=1 to go without)",
    () =>
      Effect.gen(function*() {
        expect(nativeStatus._tag === "Unavailable" ? nativeStatus.reason : "loaded").toBe("loaded")
        const tokenizer = yield* loadTokenizer(FIXTURE)
        expect(tokenizer.implementation).toBe("native")
      })
  )
})
