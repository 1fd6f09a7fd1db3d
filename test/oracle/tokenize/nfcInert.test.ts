import { nfcNormalizer, nfdNormalizer } from "tokenizers"
import { describe, expect, it } from "vitest"
import { makeRng } from "../../../scripts/corpus/prng.ts"
import { isNfcInert, NFC_INERT } from "../../../src/tokenize/unicodeClasses.ts"

// Both NFC implementations the encoder meets: Hugging Face's (the truth) and Node's ICU.
const hfNfc = nfcNormalizer()
const nfcs: ReadonlyArray<(s: string) => string> = [(s) => hfNfc.normalizeString(s), (s) => s.normalize("NFC")]
const isSurrogate = (cp: number) => cp >= 0xd800 && cp <= 0xdfff

describe("the NFC-inert table", () => {
  it("agrees with the probes of scripts/make-unicode-classes.ts on sampled code points", () => {
    const hfNfd = nfdNormalizer()
    const notFirst = new Set<number>()
    for (let cp = 0; cp < 0x110000; cp++) {
      if (isSurrogate(cp)) continue
      const c = String.fromCodePoint(cp)
      for (const d of [[...c.normalize("NFD")], [...hfNfd.normalizeString(c)]]) {
        for (let i = 1; i < d.length; i++) notFirst.add(d[i]!.codePointAt(0)!)
      }
    }
    const rng = makeRng(11)
    const sample = [
      ...Array.from({ length: 0x3000 }, (_, i) => 0x300 + i),
      ...Array.from({ length: 3000 }, () => rng.int(0x110000))
    ]
    for (const cp of sample.filter((cp) => !isSurrogate(cp))) {
      const c = String.fromCodePoint(cp)
      const probed = !notFirst.has(cp) &&
        nfcs.every((nfc) => nfc(c) === c && nfc(c + "\u0334") === c + "\u0334" && nfc("\u0301" + c) === "\u0301" + c)
      expect(NFC_INERT[cp], cp.toString(16)).toBe(probed ? 1 : 0)
    }
  })

  it("strings of inert code points are their own NFC (Hugging Face's and Node's)", () => {
    const inert: Array<number> = []
    const nearChanging: Array<number> = []
    for (let cp = 0; cp < 0x110000; cp++) {
      if (isSurrogate(cp)) continue
      if (NFC_INERT[cp] === 1) inert.push(cp)
      else for (let d = -3; d <= 3; d++) if (NFC_INERT[cp + d] === 1) nearChanging.push(cp + d)
    }
    // Composition starters and Hangul syllables (LV + T composes) are where a mistake would show.
    const starters = [..."aeiouAEIOUnNcCsSzZ", ..."가개각나노한글ᄀᄁ"].map((c) => c.codePointAt(0)!)
    const rng = makeRng(12)
    const pick = (): number => {
      const u = rng.int(3)
      return u === 0 ? rng.pick(starters) : u === 1 ? rng.pick(nearChanging) : rng.pick(inert)
    }
    const bad: Array<string> = []
    for (let n = 0; n < 20000; n++) {
      const s = String.fromCodePoint(...Array.from({ length: 1 + rng.int(8) }, pick))
      if (!isNfcInert(s)) continue
      if (nfcs.some((nfc) => nfc(s) !== s)) bad.push(s)
    }
    expect(bad.slice(0, 5)).toEqual([])
  })
})
