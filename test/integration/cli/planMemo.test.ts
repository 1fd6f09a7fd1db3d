/**
 * The plan memo (scripts/plan-memo.cjs): a plan is replayed only while everything it read would read
 * the same, and never recorded when it did something the watch cannot vouch for.
 *
 * The watch is checked first with a small stand-in bundle whose "plan" does one thing per flag (reads a
 * file, lists a directory, writes, starts a process...), then with the real CLI on a workspace whose
 * outputs and lineage change between plans.
 */
import { execa } from "execa"
import * as fs from "node:fs"
import * as path from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { bundleAtomically, bundlePath } from "../../../scripts/build-cli.mjs"
import { loaderPath as loader } from "../../../scripts/cached-bundle.cjs"
import { memoDir } from "../../../scripts/plan-memo.cjs"
import { root, tempWorkspace } from "../../support/cli.ts"

// Each flag of the stand-in's "plan" is one kind of access; it prints what it read.
const standIn = `
const fs = require("node:fs")
const args = process.argv.slice(3)
const value = (flag) => args[args.indexOf(flag) + 1]
if (args.includes("--read")) console.log("read:", fs.readFileSync(value("--read"), "utf8"))
if (args.includes("--exists")) console.log("exists:", fs.existsSync(value("--exists")))
if (args.includes("--bigint")) console.log("size:", String(fs.statSync(value("--bigint"), { bigint: true }).size))
if (args.includes("--list")) console.log("list:", fs.readdirSync(value("--list")).sort().join(","))
if (args.includes("--write")) fs.writeFileSync(value("--write"), "x")
if (args.includes("--mkdir")) fs.mkdirSync(value("--mkdir"), { recursive: true })
if (args.includes("--spawn")) require("node:child_process").spawnSync("true")
if (args.includes("--signal")) process.kill(process.pid, 0)
if (args.includes("--fail")) process.exitCode = 1
if (args.includes("--env")) console.log("env:", process.env.STAND_IN_VALUE)
if (args.includes("--fd")) fs.writeSync(1, "written around process.stdout\\n")
if (args.includes("--sqlite")) new (require(value("--sqlite")))(":memory:").close()
console.error("done")
`

const firstFile = (dir: string): string | undefined => {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const file = path.join(dir, entry.name)
    const found = entry.isDirectory() ? firstFile(file) : file
    if (found !== undefined) return found
  }
  return undefined
}

/** What became of the memo, as FLAME_PIPE_PLAN_MEMO=explain says it on stderr. */
const memoState = (stderr: string) => {
  const lines = stderr.split("\n").filter((l) => l.startsWith("plan memo: "))
  if (lines.some((l) => l.startsWith("plan memo: replayed"))) return "replayed"
  if (lines.some((l) => l.startsWith("plan memo: recorded"))) return "recorded"
  const refused = lines.find((l) => l.startsWith("plan memo: not recorded: "))
  return refused === undefined ? "untouched" : refused.slice("plan memo: ".length)
}

describe("the watch, with a stand-in bundle", () => {
  let dir: string
  let bundle: string
  beforeAll(() => {
    dir = tempWorkspace("fp-plan-memo-")
    bundle = path.join(dir, "stand-in.cjs")
    fs.writeFileSync(bundle, standIn)
  })
  const plan = async (args: ReadonlyArray<string>, env: Record<string, string> = {}) => {
    const result = await execa("node", [loader, bundle, "plan", ...args], {
      reject: false,
      env: { FLAME_PIPE_PLAN_MEMO: "explain", ...env }
    })
    return { ...result, memo: memoState(result.stderr), output: result.stdout }
  }

  it("replays a read until the file changes, even to the same size and mtime", async () => {
    const file = path.join(dir, "input.txt")
    // A whole-second mtime, which a rewrite can set again exactly.
    const stamp = new Date(1_700_000_000_000)
    fs.writeFileSync(file, "aaaa")
    fs.utimesSync(file, stamp, stamp)
    expect((await plan(["--read", file])).memo).toBe("recorded")
    const replayed = await plan(["--read", file])
    expect(replayed.memo).toBe("replayed")
    expect(replayed.output).toBe("read: aaaa")
    // The replay prints stderr too, in order.
    expect(replayed.stderr).toContain("done")

    fs.writeFileSync(file, "bbbb")
    fs.utimesSync(file, stamp, stamp)
    expect(fs.statSync(file).mtimeMs).toBe(stamp.getTime())
    const changed = await plan(["--read", file])
    expect(changed.memo).toBe("recorded")
    expect(changed.output).toBe("read: bbbb")
    expect((await plan(["--read", file])).output).toBe("read: bbbb")
  })

  it("describes a file alike whether it was stat'ed with bigint or not", async () => {
    const file = path.join(dir, "sized.txt")
    fs.writeFileSync(file, "12345")
    expect((await plan(["--bigint", file])).memo).toBe("recorded")
    expect((await plan(["--bigint", file])).memo).toBe("replayed")
    fs.appendFileSync(file, "6")
    const grown = await plan(["--bigint", file])
    expect(grown.memo).toBe("recorded")
    expect(grown.output).toBe("size: 6")
    // The memo holds what the bigint stat saw, checked by a plain stat at replay.
    expect((await plan(["--bigint", file])).memo).toBe("replayed")
  })

  it("notices a file that appears where one was absent, and a directory's new entry", async () => {
    const later = path.join(dir, "later.txt")
    expect((await plan(["--exists", later])).memo).toBe("recorded")
    expect((await plan(["--exists", later])).output).toBe("exists: false")
    fs.writeFileSync(later, "")
    const appeared = await plan(["--exists", later])
    expect(appeared.memo).toBe("recorded")
    expect(appeared.output).toBe("exists: true")

    const listed = path.join(dir, "listed")
    fs.mkdirSync(listed)
    fs.writeFileSync(path.join(listed, "a"), "")
    await plan(["--list", listed])
    expect((await plan(["--list", listed])).memo).toBe("replayed")
    fs.writeFileSync(path.join(listed, "b"), "")
    const grown = await plan(["--list", listed])
    expect(grown.memo).toBe("recorded")
    expect(grown.output).toBe("list: a,b")
  })

  it("keys on the command line and the environment", async () => {
    await plan(["--env"], { STAND_IN_VALUE: "one" })
    expect((await plan(["--env"], { STAND_IN_VALUE: "one" })).memo).toBe("replayed")
    const other = await plan(["--env"], { STAND_IN_VALUE: "two" })
    expect(other.memo).toBe("recorded")
    expect(other.output).toBe("env: two")
    expect((await plan(["--env", "--extra"], { STAND_IN_VALUE: "one" })).memo).toBe("recorded")

    // The memo keeps a digest of the environment, never its values, and only its owner reads it.
    await plan(["--env"], { STAND_IN_VALUE: "one", STAND_IN_TOKEN: "s3cr3t-not-on-disk" })
    for (const name of fs.readdirSync(memoDir(bundle))) {
      const memo = path.join(memoDir(bundle), name)
      expect(fs.readFileSync(memo, "latin1")).not.toContain("s3cr3t-not-on-disk")
      expect(fs.statSync(memo).mode & 0o777).toBe(0o600)
    }
  })

  it("records nothing for a plan that writes, starts a process, signals or fails", async () => {
    expect((await plan(["--write", path.join(dir, "written")])).memo).toMatch(
      /not recorded: it called fs\.writeFileSync/
    )
    expect((await plan(["--mkdir", path.join(dir, "made")])).memo).toMatch(/not recorded: it made the directory/)
    expect((await plan(["--spawn"])).memo).toMatch(/not recorded: it called child_process\.spawnSync/)
    expect((await plan(["--signal"])).memo).toMatch(/not recorded: it called process\.kill/)
    expect((await plan(["--fail"])).memo).toMatch(/not recorded: it exited with 1/)
    expect((await plan(["--fd"])).memo).toMatch(/not recorded: it wrote to standard output or error directly/)
    // The database driver is watched only as the CLI requires it, by name; loaded otherwise it is a
    // native module like any other.
    const driver = path.join(root, "node_modules", "better-sqlite3")
    expect((await plan(["--sqlite", driver])).memo).toMatch(/not recorded: it loaded the native module/)
    // None of them is replayed afterwards: there was nothing to replay.
    expect((await plan(["--spawn"])).memo).toMatch(/not recorded/)
    // `mkdir -p` of a directory that exists changes nothing.
    await plan(["--mkdir", dir])
    expect((await plan(["--mkdir", dir])).memo).toBe("replayed")
  })

  it("holds for one bundle file only, and only for plan", async () => {
    await plan(["--exists", bundle])
    expect((await plan(["--exists", bundle])).memo).toBe("replayed")
    fs.writeFileSync(`${bundle}.tmp`, standIn)
    fs.renameSync(`${bundle}.tmp`, bundle)
    expect((await plan(["--exists", bundle])).memo).toBe("recorded")

    const status = await execa("node", [loader, bundle, "status"], { env: { FLAME_PIPE_PLAN_MEMO: "explain" } })
    expect(memoState(status.stderr)).toBe("untouched")
    const off = await plan(["--exists", bundle], { FLAME_PIPE_PLAN_MEMO: "0" })
    expect(off.memo).toBe("untouched")
    expect(off.output).toBe("exists: true")
  })

  it("runs the plan again when its memo is damaged", async () => {
    fs.rmSync(memoDir(bundle), { recursive: true, force: true })
    await plan(["--exists", dir])
    expect((await plan(["--exists", dir])).memo).toBe("replayed")
    const memos = fs.readdirSync(memoDir(bundle)).map((name) => path.join(memoDir(bundle), name))
    const damage = async (text: string) => {
      for (const memo of memos) fs.writeFileSync(memo, text)
      const again = await plan(["--exists", dir])
      expect(again.memo).toBe("recorded")
      expect(again.output).toBe("exists: true")
    }
    const [recorded] = memos.map((memo) =>
      JSON.parse(fs.readFileSync(memo, "latin1").split("\n")[0]!) as { key: string }
    )
    await damage("{ not json")
    const head = JSON.stringify({ key: recorded!.key, reads: [] })
    await damage(`${head}\n{ not json`)
    await damage(`${head}`)
    await damage(`${JSON.stringify({ key: recorded!.key, reads: [7] })}\n{}`)
    await damage(`${head}\n${JSON.stringify({ reads: [7], output: [] })}`)
    await damage(`${head}\n${JSON.stringify({ reads: [], output: [[1, 7]] })}`)
  })

  it("is cleared when a build replaces the bundle", async () => {
    const entry = path.join(dir, "entry.mjs")
    fs.writeFileSync(entry, "console.log(1)\n")
    const out = path.join(dir, "built.cjs")
    fs.mkdirSync(memoDir(out), { recursive: true })
    fs.writeFileSync(path.join(memoDir(out), "0000000000000000.json"), "{}")
    await bundleAtomically({ entryPoints: [entry], format: "cjs" }, out)
    expect(fs.existsSync(memoDir(out))).toBe(false)
  })
})

describe("the CLI's plan", () => {
  const cli = (args: ReadonlyArray<string>, memo = "explain") =>
    execa("node", [loader, bundlePath, ...args], {
      cwd: root,
      reject: false,
      env: { FLAME_PIPE_PLAN_MEMO: memo, FORCE_COLOR: "0", NO_COLOR: "1" }
    })

  it(
    "answers from the memo exactly as it would evaluate, and evaluates again once outputs or lineage change",
    async () => {
      const ws = tempWorkspace("fp-plan-memo-cli-")
      const planArgs = ["plan", "toy", "--workspace", ws, "--gpus", "none"]
      expect((await cli(["run", "toy", "--workspace", ws, "--gpus", "none"])).exitCode).toBe(0)

      const first = await cli(planArgs)
      expect(memoState(first.stderr)).toBe("recorded")
      const replayed = await cli(planArgs)
      expect(memoState(replayed.stderr)).toBe("replayed")
      const evaluated = await cli(planArgs, "0")
      expect(replayed.stdout).toBe(evaluated.stdout)
      expect(replayed.stdout).toMatch(/^0 of \d+ stages would run$/m)
      expect((await cli([...planArgs, "--json"])).stdout).toBe((await cli([...planArgs, "--json"], "0")).stdout)

      // An output removed behind the engine's back: the plan evaluates and sees it.
      fs.rmSync(firstFile(path.join(ws, "artifacts"))!)
      const stale = await cli(planArgs)
      expect(memoState(stale.stderr)).toBe("recorded")
      expect(stale.stdout).toMatch(/^STALE /m)
      expect(stale.stdout).toBe((await cli(planArgs, "0")).stdout)

      // A run changes the lineage: the next plan evaluates again, and finds everything fresh.
      expect((await cli(["run", "toy", "--workspace", ws, "--gpus", "none"])).exitCode).toBe(0)
      const after = await cli(planArgs)
      expect(memoState(after.stderr)).toBe("recorded")
      expect(after.stdout).toMatch(/^0 of \d+ stages would run$/m)
      expect(memoState((await cli(planArgs)).stderr)).toBe("replayed")
    },
    120_000
  )
})
