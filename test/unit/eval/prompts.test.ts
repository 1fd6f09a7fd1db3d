import { describe, expect, it } from "vitest"
import { pyCapitalize, pyLen, pyRstrip, pyStrip } from "../../../src/eval/pythonString.ts"
import {
  arcChallenge,
  arcEasy,
  hellaswag,
  hellaswagPreprocess,
  type McDoc,
  openBookQa,
  piqa,
  winogrande
} from "../../../src/eval/tasks.ts"
import { fixtureDocs } from "./support.ts"

const doc = (docs: ReturnType<typeof fixtureDocs>, i: number): McDoc => docs[i]!.doc

describe("task prompts on fixture rows (expected strings written by hand)", () => {
  it("ARC: 'Question: ...\\nAnswer:', choices.text, gold = index of answerKey in choices.label", () => {
    expect(doc(fixtureDocs(arcEasy, "test"), 0)).toEqual({
      _tag: "Choices",
      query: "Question: Which object is attracted to a magnet?\nAnswer:",
      choices: ["a plastic spoon", "an iron nail", "a rubber band", "a glass marble"],
      gold: 1
    })
    // Numeric labels ("1".."4"): answerKey "4" is the fourth label.
    expect(doc(fixtureDocs(arcEasy, "train"), 10)).toMatchObject({
      query: "Question: Which unit is used to measure mass?\nAnswer:",
      gold: 3
    })
    // Five choices, and three choices.
    expect(doc(fixtureDocs(arcChallenge, "train"), 10)).toMatchObject({ gold: 3 })
    expect(doc(fixtureDocs(arcChallenge, "train"), 11)).toMatchObject({
      choices: ["more acidic", "more basic", "neutral"],
      gold: 0
    })
  })

  it("OpenBookQA: the question stem alone", () => {
    expect(doc(fixtureDocs(openBookQa, "test"), 0)).toEqual({
      _tag: "Choices",
      query: "A candle is lit in a dark room. The room becomes",
      choices: ["colder", "brighter", "wetter", "quieter"],
      gold: 1
    })
  })

  it("PIQA: 'Question: {goal}\\nAnswer:' with [sol1, sol2]", () => {
    expect(doc(fixtureDocs(piqa, "validation"), 1)).toEqual({
      _tag: "Choices",
      query: "Question: Light a candle deep inside a jar.\nAnswer:",
      choices: [
        "Use a short match and burn your fingers.",
        "Light a piece of uncooked spaghetti and use it as a long match."
      ],
      gold: 1
    })
  })

  it("HellaSwag: '{activity_label}: {ctx_a} {ctx_b.capitalize()}', preprocessed", () => {
    const val = fixtureDocs(hellaswag, "validation")
    expect(doc(val, 0)).toEqual({
      _tag: "Choices",
      query: "Baking cookies: A man rolls cookie dough into small balls on a tray. He",
      choices: [
        "places the tray in the hot oven.",
        "rolls the tray down a hill.",
        "feeds the dough to the birds.",
        "wraps the tray in newspaper."
      ],
      gold: 0
    })
    // WikiHow: " [title]" becomes ". ", [header] and [step] disappear, and capitalize() lower-cases
    // "Spray" because it is not the first character of ctx_b ("[step] Spray the glass").
    expect(doc(val, 1)).toMatchObject({
      query: "Home and Garden: How to clean a window. Mix vinegar and water. spray the glass"
    })
    // capitalize() lower-cases the rest: "The Teenager" -> "The teenager".
    expect(doc(val, 2)).toMatchObject({
      query: "Skateboarding: A teenager sets a skateboard down at the top of a ramp. The teenager"
    })
    // Empty ctx_b: the trailing space is stripped. Endings: the strip happens before "[step]" is removed,
    // so a leading space survives; the double space collapses.
    expect(doc(val, 5)).toMatchObject({
      query: "Food and Entertaining: How to make toast. Put bread in the toaster.",
      choices: [
        " Wait until it pops up and butter it.",
        " Pour water into the toaster.",
        " Mail the toaster to a friend.",
        " Paint the bread."
      ],
      gold: 0
    })
  })

  it("HellaSwag preprocess: non-greedy brackets, one pass of double-space collapsing", () => {
    expect(hellaswagPreprocess("  a [x] b [y] c  ")).toBe("a b c")
    expect(hellaswagPreprocess("a   b")).toBe("a  b")
    // Python's '.' does not cross a newline, so this bracket pair is left alone.
    expect(hellaswagPreprocess("a [x\ny] b")).toBe("a [x\ny] b")
    expect(hellaswagPreprocess("Intro [title] Step one")).toBe("Intro. Step one")
  })

  it("WinoGrande: one context per option, the rest of the sentence stripped as target", () => {
    const val = fixtureDocs(winogrande, "validation")
    expect(doc(val, 0)).toEqual({
      _tag: "MultipleInput",
      contexts: [
        "The trophy would not fit in the suitcase because the trophy",
        "The trophy would not fit in the suitcase because the suitcase"
      ],
      target: "was too big.",
      gold: 0
    })
    expect(doc(val, 2)).toMatchObject({
      contexts: ["Maria lent her umbrella to Jane because Maria", "Maria lent her umbrella to Jane because Jane"],
      gold: 1
    })
    expect(doc(val, 11)).toMatchObject({ target: "." })
  })
})

describe("Python string semantics", () => {
  it("capitalize title-cases the first character and lower-cases the rest", () => {
    expect(pyCapitalize("hELLO wORLD")).toBe("Hello world")
    expect(pyCapitalize("")).toBe("")
    expect(pyCapitalize("ǆemal")).toBe("ǅemal")
    expect(pyCapitalize("ßig")).toBe("Ssig")
  })

  it("strip uses Python's whitespace set and len counts code points", () => {
    expect(pyStrip("\x1c\x85 a \u3000")).toBe("a")
    expect(pyStrip("\ufeffa")).toBe("\ufeffa")
    expect(pyRstrip("Answer:\n ")).toBe("Answer:")
    expect(pyLen("a😀b")).toBe(3)
  })
})
