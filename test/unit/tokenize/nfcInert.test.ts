import { describe, expect, it } from "vitest"
import { NFC_INERT } from "../../../src/tokenize/unicodeClasses.ts"

// Compared with Hugging Face's and Node's NFC in test/oracle/tokenize/nfcInert.test.ts.
describe("the NFC-inert table", () => {
  it("marks what NFC changes, and not what it leaves alone", () => {
    const changing = [0x300, 0x301, 0x36f, 0x344, 0x1161, 0x11a8, 0x2000, 0x212b, 0x3099, 0xf900, 0x0958, 0x1d15e]
    const inert = [0x41, 0xe9, 0x2019, 0x201c, 0x2014, 0x2026, 0x20ac, 0x6771, 0xac00, 0xac01, 0x3042, 0x1f642]
    expect(changing.filter((cp) => NFC_INERT[cp] === 1).map((cp) => cp.toString(16))).toEqual([])
    expect(inert.filter((cp) => NFC_INERT[cp] === 0).map((cp) => cp.toString(16))).toEqual([])
    for (let cp = 0; cp < 0x300; cp++) expect(NFC_INERT[cp]).toBe(1)
  })
})
