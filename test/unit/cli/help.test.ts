import { stripVTControlCharacters } from "node:util"
import { describe, expect, it } from "vitest"
import { requestedHelp } from "../../../src/cli/Cli.ts"
import { globMatches, globRegExp } from "../../../src/glob.ts"

const argv = (...args: Array<string>) => ["node", "flame-pipe", ...args]
// Help is rendered with ANSI styles; the assertions read the words.
const plain = (text: string | undefined) => stripVTControlCharacters(text ?? "")

describe("help", () => {
  it("shows each option's default and none of @effect/cli's filler", () => {
    const help = plain(requestedHelp(argv("plan", "--help")))
    expect(help).toContain("$ plan")
    expect(help).toMatch(/--workspace directory\s+where artifacts, logs and lineage.sqlite live\s+default: runs/)
    expect(help).toMatch(/--executor local \| slurm\s+where stage bodies run[^\n]*\s+default: local/)
    expect(help).toMatch(/--gpus text\s+[^\n]*nvidia-smi\s+default: auto/)
    for (
      const filler of [
        "A user-defined piece of text.",
        "A true or false value.",
        "A directory.",
        "This setting is optional.",
        "One of the following"
      ]
    ) expect(help).not.toContain(filler)
  })

  it("lists the built-in options that work, and not --log-level or --wizard", () => {
    const help = plain(requestedHelp(argv("run", "-h")))
    expect(help).toContain("GLOBAL OPTIONS")
    expect(help).toContain("--version")
    expect(help).toMatch(/--cpus integer\s+CPU slots shared by running stages\s+default: the CPU count/)
    expect(help).not.toContain("--log-level")
    expect(help).not.toContain("--wizard")
  })

  it("gives the command list for the CLI itself, and nothing when no help is asked for", () => {
    const help = plain(requestedHelp(argv("--help")))
    for (const name of ["run", "plan", "status", "lineage", "dag", "show", "audit", "gc", "pin", "report"]) {
      expect(help).toMatch(new RegExp(`^\\s*- ${name}\\b`, "m"))
    }
    expect(requestedHelp(argv("plan", "toy"))).toBeUndefined()
    // After `--`, -h is an argument, not a request for help.
    expect(requestedHelp(argv("plan", "--", "-h"))).toBeUndefined()
  })
})

describe("stage id globs", () => {
  it("match across '/' with '*', and take every other character literally", () => {
    expect(globMatches("eval/*", "eval/flame-moe-38m/10")).toBe(true)
    expect(globMatches("eval/*/212", "eval/flame-moe-38m/212")).toBe(true)
    expect(globMatches("train/*", "tokenize/merge")).toBe(false)
    expect(globMatches("eval/m.1", "eval/mx1")).toBe(false)
    expect(globMatches("train/{a,b}", "train/b")).toBe(false)
    expect(globMatches("train/{a,b}", "train/{a,b}")).toBe(true)
    expect(globRegExp("train/(x)").test("train/(x)")).toBe(true)
    expect(globRegExp("train/(x)").test("train/x")).toBe(false)
    expect(globRegExp("square/?").test("square/1")).toBe(false)
    expect(globRegExp("a\\b*").test("a\\bc")).toBe(true)
  })
})
