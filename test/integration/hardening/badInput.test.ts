/**
 * What a user gets for bad input at the command line: a non-zero exit and a message naming the
 * file, position, key or stage; never a JavaScript stack trace.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { cli, runJson, STACK_FRAME, tempWorkspace } from "../../support/cli.ts"

const dir = tempWorkspace("fp-bad-input-")
const file = (name: string, content: string) => {
  const target = path.join(dir, name)
  fs.mkdirSync(path.dirname(target), { recursive: true })
  fs.writeFileSync(target, content)
  return target
}

const pipelineModule = (body: string) =>
  `export default { name: "user", description: "", presets: { default: "" }, defaultPreset: "default", ${body} }\n`

interface Case {
  readonly name: string
  readonly args: () => ReadonlyArray<string>
  /** What the message must name. */
  readonly names: ReadonlyArray<string | RegExp>
}

const ws = () => path.join(dir, "ws")

const cases: ReadonlyArray<Case> = [
  {
    name: "a tokenizer.json that is not JSON",
    args: () => [
      "plan",
      "scaling-suite",
      "--preset",
      "tiny",
      "--workspace",
      ws(),
      "--config",
      `tokenizer=${file("tok/bad.json", "{\n  \"model\": {\"vocab\": {\"a\": 1,}}\n}\n")}`
    ],
    names: [/tok\/bad\.json:2:30: invalid JSON/]
  },
  {
    name: "a tokenizer.json without a vocabulary",
    args: () => [
      "plan",
      "scaling-suite",
      "--preset",
      "tiny",
      "--workspace",
      ws(),
      "--config",
      `tokenizer=${file("tok/novocab.json", "{\"model\": {}}")}`
    ],
    names: ["novocab.json", "model.vocab"]
  },
  {
    name: "a .ts pipeline module loaded as CommonJS",
    args: () => [
      "plan",
      file("cjs/tla.ts", `const n = await Promise.resolve(1)\n${pipelineModule("build: () => []")}`),
      "--workspace",
      ws()
    ],
    names: ["tla.ts:1:", "\"type\": \"module\""]
  },
  {
    name: "a pipeline module with a syntax error",
    args: () => ["plan", file("syntax.mts", "const x: = 1\n"), "--workspace", ws()],
    // esbuild (through tsx) names the file with a .ts extension.
    names: ["syntax.mts", /syntax\.m?ts:1:9/]
  },
  {
    name: "a pipeline whose build throws",
    args: () => [
      "plan",
      file("throws.mjs", pipelineModule("build: () => { throw new Error(\"no shards\") }")),
      "--workspace",
      ws()
    ],
    names: ["no shards", /throws\.mjs:1:\d+/]
  },
  {
    name: "a pipeline module whose build returns garbage",
    args: () => ["plan", file("garbage.mjs", pipelineModule("build: () => 42")), "--workspace", ws()],
    names: ["user", "must return an array of stage nodes"]
  },
  {
    name: "an unknown pipeline",
    args: () => ["plan", "no-such-pipeline", "--workspace", ws()],
    names: ["no-such-pipeline"]
  },
  { name: "an unknown preset", args: () => ["plan", "toy", "--preset", "huge", "--workspace", ws()], names: ["huge"] },
  {
    name: "--set on an unknown stage",
    args: () => ["plan", "toy", "--set", "nope.seed=1", "--workspace", ws()],
    names: ["nope"]
  },
  {
    name: "--set with a value of the wrong type",
    args: () => ["plan", "toy", "--set", "generate.seed=abc", "--workspace", ws()],
    names: ["generate", "seed"]
  },
  {
    name: "--set without =",
    args: () => ["plan", "toy", "--set", "generate.seed", "--workspace", ws()],
    names: ["generate.seed"]
  },
  {
    name: "a corpus path that does not exist",
    args: () => [
      "plan",
      "scaling-suite",
      "--preset",
      "tiny",
      "--workspace",
      ws(),
      "--config",
      `corpus=${path.join(dir, "none")}`
    ],
    names: [path.join(dir, "none")]
  },
  {
    name: "a workspace that is a file",
    args: () => ["plan", "toy", "--workspace", file("a-file", "")],
    names: ["a-file"]
  },
  {
    name: "a lineage database that is not SQLite",
    args: () => {
      const broken = path.join(dir, "broken-ws")
      fs.mkdirSync(broken, { recursive: true })
      fs.writeFileSync(
        path.join(broken, "lineage.sqlite"),
        "this is not a database, just text that is long enough\n".repeat(20)
      )
      return ["plan", "toy", "--workspace", broken]
    },
    names: ["lineage.sqlite"]
  },
  { name: "show of an unknown execution", args: () => ["show", "deadbeef", "--workspace", ws()], names: ["deadbeef"] },
  {
    name: "lineage of an unknown artifact",
    args: () => ["lineage", "nothing/here", "--workspace", ws()],
    names: ["nothing/here"]
  }
]

describe("bad input at the command line", () => {
  it.each(cases)("$name: a clear error, no stack", async ({ args, names }) => {
    const result = await cli(args())
    expect(result.exitCode, result.stderr).not.toBe(0)
    expect(result.stderr).not.toMatch(STACK_FRAME)
    expect(result.stderr).not.toContain("FLAME_PIPE_DEBUG")
    for (const name of names) {
      if (typeof name === "string") expect(result.stderr).toContain(name)
      else expect(result.stderr).toMatch(name)
    }
  })

  it("the stack frame matcher recognises V8 frames (so the checks above can fail)", () => {
    const stack = new Error("x").stack!
    expect(stack).toMatch(STACK_FRAME)
    expect("error: pipeline x: building the stage graph failed: boom (at /tmp/boom.mjs:1:49)").not.toMatch(STACK_FRAME)
  })

  it("a run over bad input records nothing half-done", async () => {
    const workspace = tempWorkspace()
    const { result } = await runJson(["toy", "--workspace", workspace, "--set", "generate.seed=abc"])
    expect(result.exitCode).toBe(1)
    expect(result.stderr).not.toMatch(STACK_FRAME)
  })
})
