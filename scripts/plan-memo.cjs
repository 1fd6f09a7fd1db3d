// A memo of `plan`'s answer, in the manner of Gradle's configuration cache. A plan that runs in full is
// watched: every file it stats or reads, every directory it lists and every database it opens is
// recorded with what it saw, and so is what it printed. A later plan with the same command line,
// working directory, environment, terminal and bundle checks those records again (a stat per file,
// a listing per directory) and, when every one would see the same thing, prints the recorded answer
// without loading the CLI at all. Planning is a function of exactly those inputs: it reads the
// pipeline's code (the bundle), the workspace's files and its lineage database, and nothing of the
// clock. Whatever the watch cannot vouch for makes the plan unrecordable instead: a child process, a
// signal (the workspace lock's liveness check), any write to a file, a native module other than the
// lineage database's driver, a file that changed while the plan read it, a failed command.
//
// A file is known by its device, inode, mode, size, mtime and ctime (ctime cannot be set back by
// hand, as an mtime can); a directory by its device, inode and mode, and by its entries where the plan
// listed them. A directory's own times change whenever an entry comes or goes (SQLite's -wal file
// does, on every open), and the plan never decides on them.
//
// FLAME_PIPE_PLAN_MEMO=0 turns the memo off; =explain says on stderr why a plan was or was not replayed
// or recorded. Memos live beside the bundle, one file per command line, the newest 64 kept.
"use strict"
const fs = require("node:fs")
const Module = require("node:module")
const os = require("node:os")
const path = require("node:path")
const { createHash } = require("node:crypto")
const { fileURLToPath } = require("node:url")

const FORMAT = "flame-pipe plan memo 2"
const KEEP = 64
/** The commands whose answer depends only on what the watch records. `plan` reads no clock. */
const MEMOIZED = new Set(["plan"])

const setting = () => process.env.FLAME_PIPE_PLAN_MEMO ?? "1"
const explain = (message) => {
  if (setting() === "explain") process.stderr.write(`plan memo: ${message}\n`)
}

/** Whether this command line may be memoised at all: `plan` of a pipeline the bundle holds. */
const memoizable = (args) =>
  setting() !== "0" && MEMOIZED.has(args[0]) && !args.includes("--help") && !args.includes("-h")

/**
 * Everything a plan reads besides files: the command line, the working directory, the environment,
 * the terminal it prints to, who runs it and on which machine (the workspace lock compares hosts). A
 * digest of them: the environment may hold secrets, and the memo is a file on disk.
 */
const keyOf = (identity, args) =>
  createHash("sha256").update(JSON.stringify([
    FORMAT,
    process.version,
    process.arch,
    identity,
    args,
    process.cwd(),
    Object.entries(process.env).filter(([name]) => name !== "FLAME_PIPE_PLAN_MEMO")
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    terminal(),
    [process.getuid?.() ?? null, process.getgid?.() ?? null, os.hostname(), os.availableParallelism(), os.totalmem()]
  ])).digest("hex")

const characterDevice = (fd) => {
  try {
    return fstatSync(fd).isCharacterDevice()
  } catch {
    return false
  }
}

/**
 * Whether output goes to a terminal, and how wide: only a terminal changes what a plan prints. Asking
 * Node creates the output streams, which a replay does without, so it is asked only of a character
 * device (a terminal, or /dev/null).
 */
const terminal = () =>
  characterDevice(1) || characterDevice(2)
    ? [
      process.stdout.isTTY === true,
      process.stderr.isTTY === true,
      process.stdout.isTTY ? process.stdout.columns : null
    ]
    : [false, false, null]

/** Where the memos of `bundle`'s plans live. */
const memoDir = (bundle) => `${bundle}.plan-memo`
const memoFile = (bundle, key) => path.join(memoDir(bundle), `${key.slice(0, 32)}.json`)

// The original functions, taken before the watch wraps them: its own calls must not be recorded.
const {
  fstatSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync
} = fs

/**
 * Milliseconds from a BigIntStats' nanoseconds, computed as Node computes a Stats' `mtimeMs` from the
 * same seconds and nanoseconds, so that both kinds of stat describe a file alike.
 */
const ms = (ns) => Number(ns / 1_000_000_000n) * 1e3 + Number(ns % 1_000_000_000n) / 1e6

const describe = (stat) => {
  if (stat === undefined) return "absent"
  const big = typeof stat.dev === "bigint"
  const [dev, ino, mode] = big
    ? [Number(stat.dev), Number(stat.ino), Number(stat.mode)]
    : [stat.dev, stat.ino, stat.mode]
  if (stat.isDirectory()) return `dir ${dev} ${ino} ${mode}`
  return big
    ? `file ${dev} ${ino} ${mode} ${Number(stat.size)} ${ms(stat.mtimeNs)} ${ms(stat.ctimeNs)}`
    : `file ${dev} ${ino} ${mode} ${stat.size} ${stat.mtimeMs} ${stat.ctimeMs}`
}

const observe = (stat, file) => {
  try {
    return describe(stat(file, { throwIfNoEntry: false }))
  } catch (error) {
    return `error ${error.code ?? "unknown"}`
  }
}

const listing = (dir) => {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .map((entry) => `${entry.isDirectory() ? "d" : entry.isSymbolicLink() ? "l" : "f"} ${entry.name}`)
      .sort()
      .join("\n")
  } catch (error) {
    return `error ${error.code ?? "unknown"}`
  }
}

/** What a read of `kind` ("stat", "lstat" or "list") sees of `file` now. */
const seeNow = (kind, file) => kind === "list" ? listing(file) : observe(kind === "lstat" ? lstatSync : statSync, file)

/** A database as the plan may find it: its file and its write-ahead log. */
const databaseReads = (
  file
) => [["stat", file, seeNow("stat", file)], ["stat", `${file}-wal`, seeNow("stat", `${file}-wal`)]]

/**
 * Prints the memoised answer of this command line when one exists and every read it records would see
 * the same now. Returns whether it did; when not, the caller runs the bundle (and `record`s).
 */
const replay = (bundle, identity, args) => {
  const key = keyOf(identity, args)
  let text
  try {
    text = readFileSync(memoFile(bundle, key), "latin1")
  } catch {
    explain("none recorded for this command line")
    return { replayed: false, key }
  }
  const holds = (reads) => {
    const changed = reads.find((read) => !Array.isArray(read) || seeNow(read[0], read[1]) !== read[2])
    if (changed !== undefined) explain(`${Array.isArray(changed) ? changed[1] : "a recorded read"} changed`)
    return changed === undefined
  }
  // Two lines of JSON: the key and the reads that change most often (the lineage database), then the
  // rest. A run changes the database, and the plan after it need not parse the thousands of others.
  const newline = text.indexOf("\n")
  let head, body
  try {
    head = JSON.parse(text.slice(0, newline))
    if (head?.key !== key || !Array.isArray(head.reads)) throw new Error("another key")
    if (!holds(head.reads)) return { replayed: false, key }
    body = JSON.parse(text.slice(newline + 1))
    if (
      !Array.isArray(body?.reads) || !Array.isArray(body.output) ||
      !body.output.every((chunk) => Array.isArray(chunk) && typeof chunk[1] === "string")
    ) throw new Error("damaged")
  } catch {
    explain("the recorded one is damaged or for another command line")
    return { replayed: false, key }
  }
  if (!holds(body.reads)) return { replayed: false, key }
  explain(`replayed (${head.reads.length + body.reads.length} reads checked)`)
  emit(body.output)
  return { replayed: true, key }
}

/**
 * Writes the recorded output straight to the file descriptors: the streams of process.stdout and stderr
 * cost more to set up than a plan's replay takes. A descriptor that would block (a non-blocking pipe
 * that is full) gets the rest through its stream; a reader that went away (`plan | head`) gets no more.
 */
const emit = (output) => {
  const viaStream = new Set()
  for (const [fd, text] of output) {
    const bytes = Buffer.from(text, "latin1")
    let offset = 0
    while (offset < bytes.length && !viaStream.has(fd)) {
      try {
        offset += writeSync(fd, bytes, offset)
      } catch (error) {
        if (error.code === "EPIPE") return
        if (error.code !== "EAGAIN") throw error
        viaStream.add(fd)
      }
    }
    if (viaStream.has(fd)) (fd === 2 ? process.stderr : process.stdout).write(bytes.subarray(offset))
  }
}

const asPath = (value) => {
  // An absolute path is recorded as given: a replay stats the same string, and resolving it costs more
  // than the plan's own stat.
  if (typeof value === "string") return path.isAbsolute(value) ? value : path.resolve(value)
  if (value instanceof URL) return value.protocol === "file:" ? fileURLToPath(value) : undefined
  if (Buffer.isBuffer(value)) return path.resolve(value.toString())
  return undefined
}

// How the watch treats each function of node:fs and fs/promises. Any function not named here (a write,
// or one added to Node later) makes the plan unrecordable.
const STAT = new Set([
  "access",
  "accessSync",
  "exists",
  "existsSync",
  "stat",
  "statSync",
  "readFile",
  "readFileSync",
  "readlink",
  "readlinkSync",
  "realpath",
  "realpathSync",
  "statfs",
  "statfsSync"
])
const LSTAT = new Set(["lstat", "lstatSync"])
const LIST = new Set(["readdir", "readdirSync", "opendir", "opendirSync"])
const OPEN = new Set(["open", "openSync", "createReadStream", "openAsBlob"])
const BY_FD = new Set([
  "close",
  "closeSync",
  "fstat",
  "fstatSync",
  "read",
  "readSync",
  "readv",
  "readvSync",
  "write",
  "writeSync",
  "writev",
  "writevSync",
  "fsync",
  "fsyncSync",
  "fdatasync",
  "fdatasyncSync"
])
const NEUTRAL = new Set(["unwatchFile", "_toUnixTimestamp"])

const readOnlyFlags = (flags) =>
  flags === undefined || flags === null || flags === "r" || flags === "rs" || flags === "sr" ||
  (typeof flags === "number" &&
    (flags &
        (fs.constants.O_WRONLY | fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_TRUNC |
          fs.constants.O_APPEND)) === 0)

/**
 * Watches the rest of this process (the bundle running `args`) and, as it exits successfully having
 * read only what the watch can vouch for, writes the memo that `replay` checks. Returns `refuse`, for
 * what the loader itself sees and the watch cannot (an ES module imported from outside the bundle is
 * read by Node's loader, not through node:fs).
 */
const record = (bundle, key) => {
  const reads = new Map()
  const output = []
  let unrecordable
  /** Inside process.stdout's or process.stderr's write, whose output is recorded. */
  let streaming = 0

  const refuse = (reason) => {
    unrecordable ??= reason
  }
  const read = (kind, file, seen) => {
    const id = `${kind}\0${file}`
    const earlier = reads.get(id)
    if (earlier === undefined) reads.set(id, [kind, file, seen])
    else if (earlier[2] !== seen) refuse(`${file} changed while the plan read it`)
  }

  /** What a call of `name` is, decided once per function rather than on every call. */
  const classify = (name) =>
    name === "statSync" || name === "lstatSync"
      ? "sync stat"
      : STAT.has(name)
      ? "stat"
      : LSTAT.has(name)
      ? "lstat"
      : LIST.has(name)
      ? "list"
      : OPEN.has(name)
      ? "open"
      : BY_FD.has(name)
      ? "by fd"
      : name === "mkdir" || name === "mkdirSync"
      ? "mkdir"
      : NEUTRAL.has(name)
      ? "neutral"
      : "refused"

  // A synchronous stat records what it returned, which is what the caller decides on: the plan's many
  // output checks cost no second stat.
  const watchSyncStat = (original, kind) =>
    function(file, options) {
      const resolved = asPath(file)
      let result
      try {
        result = original.call(this, file, options)
      } catch (error) {
        if (resolved !== undefined) read(kind, resolved, error.code === "ENOENT" ? "absent" : `error ${error.code}`)
        throw error
      }
      if (resolved !== undefined) read(kind, resolved, describe(result))
      return result
    }

  const watchCall = (original, label, name, what) =>
    function(...args) {
      if (what === "stat" || what === "lstat" || what === "list" || what === "open") {
        const file = asPath(args[0])
        if (file === undefined) {
          // A file descriptor: what it reads was recorded when it was opened. Standard input is not.
          if (args[0] === 0) refuse("it read standard input")
        } else if (what === "open" && !readOnlyFlags(name === "createReadStream" ? args[1]?.flags : args[1])) {
          refuse(`it opened ${file} for writing`)
        } else {
          const kind = what === "open" ? "stat" : what
          read(kind, file, seeNow(kind, file))
        }
      } else if (what === "by fd") {
        if (name.startsWith("read") && args[0] === 0) {
          refuse("it read standard input")
        } else if (name.startsWith("write") && (args[0] === 1 || args[0] === 2) && streaming === 0) {
          // Output is recorded from process.stdout and process.stderr; a write around them is not.
          refuse("it wrote to standard output or error directly")
        }
      } else if (what === "mkdir") {
        // `mkdir -p` of a directory that exists changes nothing; any other mkdir does.
        const file = asPath(args[0])
        const seen = file === undefined ? undefined : seeNow("stat", file)
        if (seen?.startsWith("dir ") && args[1]?.recursive === true) read("stat", file, seen)
        else refuse(`it made the directory ${file ?? args[0]}`)
      } else if (what === "refused") {
        refuse(`it called ${label}.${name}`)
      }
      return original.apply(this, args)
    }

  const wrap = (holder, label, name) => {
    const original = holder[name]
    if (!Object.getOwnPropertyDescriptor(holder, name)?.writable) return
    const what = classify(name)
    if (what === "neutral") return
    const watched = what === "sync stat"
      ? watchSyncStat(original, name === "lstatSync" ? "lstat" : "stat")
      : watchCall(original, label, name, what)
    Object.defineProperties(watched, Object.getOwnPropertyDescriptors(original))
    holder[name] = watched
  }

  const watchAll = (holder, label) => {
    for (const name of Object.keys(holder)) {
      if (typeof holder[name] === "function" && !/^[A-Z]/.test(name)) wrap(holder, label, name)
    }
  }
  watchAll(fs, "fs")
  watchAll(fs.promises, "fs.promises")
  for (const fn of ["realpath", "realpathSync"]) {
    const native = fs[fn].native
    if (typeof native === "function") {
      const holder = { native }
      wrap(holder, `fs.${fn}`, "native")
      fs[fn].native = holder.native
    }
  }

  const refuseCall = (holder, label, name) => {
    const original = holder[name]
    if (typeof original !== "function") return
    holder[name] = function(...args) {
      refuse(`it called ${label}`)
      return original.apply(this, args)
    }
  }
  refuseCall(process, "process.kill", "kill")
  refuseCall(process, "process.chdir", "chdir")

  // A module loaded later may start processes or threads, or read files natively: the watch wraps what
  // it can vouch for (SQLite through better-sqlite3) and refuses the rest.
  const databases = []
  const watchedModules = new WeakSet()
  const load = Module._load
  Module._load = function(request, ...rest) {
    const exports = load.call(this, request, ...rest)
    const name = request.replace(/^node:/, "")
    if (name === "child_process" || name === "cluster") {
      // Loading is harmless (the GPU probe's module imports it); starting a process is not.
      if (!watchedModules.has(exports)) {
        watchedModules.add(exports)
        for (const fn of Object.keys(exports)) {
          if (typeof exports[fn] === "function" && !/^[A-Z]/.test(fn)) refuseCall(exports, `${name}.${fn}`, fn)
        }
      }
    } else if (name === "worker_threads" && typeof exports.Worker === "function" && !watchedModules.has(exports)) {
      watchedModules.add(exports)
      exports.Worker = new Proxy(exports.Worker, {
        construct(target, args, newTarget) {
          refuse("it started a worker thread")
          return Reflect.construct(target, args, newTarget)
        }
      })
    } else if (request === "better-sqlite3" && typeof exports === "function") {
      const opening = (args) => {
        const file = typeof args[0] === "string" && args[0] !== "" && args[0] !== ":memory:"
          ? path.resolve(args[0])
          : undefined
        if (file !== undefined) databases.push({ file, before: databaseReads(file) })
      }
      // better-sqlite3's Database may be called with or without `new`.
      return new Proxy(exports, {
        construct(target, args, newTarget) {
          opening(args)
          return Reflect.construct(target, args, newTarget)
        },
        apply(target, self, args) {
          opening(args)
          return Reflect.apply(target, self, args)
        }
      })
    }
    return exports
  }
  const dlopen = process.dlopen
  process.dlopen = function(module, filename, ...rest) {
    // better-sqlite3 loads its addon as its first database opens, which the watch has then recorded.
    if (path.basename(filename) === "better_sqlite3.node" && databases.length > 0) {
      read("stat", path.resolve(filename), seeNow("stat", filename))
    } else refuse(`it loaded the native module ${filename}`)
    return dlopen.call(this, module, filename, ...rest)
  }

  for (const [fd, stream] of [[1, process.stdout], [2, process.stderr]]) {
    const write = stream.write
    stream.write = function(chunk, encoding, ...rest) {
      output.push([
        fd,
        Buffer.from(chunk, typeof chunk === "string" && typeof encoding === "string" ? encoding : "utf8")
          .toString("latin1")
      ])
      streaming++
      try {
        return write.call(this, chunk, encoding, ...rest)
      } finally {
        streaming--
      }
    }
  }

  process.once("exit", (code) => {
    try {
      if (code !== 0) refuse(`it exited with ${code}`)
      // A database is a read like any other when the plan left it as it found it; a plan that wrote to it
      // (the hashes it learned) is not recorded, and the next one, with nothing new to write, is.
      for (const { file, before } of databases) {
        if (JSON.stringify(databaseReads(file)) !== JSON.stringify(before)) refuse(`it wrote to ${file}`)
      }
      if (unrecordable !== undefined) {
        explain(`not recorded: ${unrecordable}`)
        return
      }
      // The databases go first, in a line of their own: every run changes its lineage, and a replay
      // stops at the first change it sees, before parsing and stat'ing thousands of outputs.
      const head = { key, reads: databases.flatMap(({ before }) => before) }
      const body = { reads: [...reads.values()], output }
      save(bundle, key, `${JSON.stringify(head)}\n${JSON.stringify(body)}`)
      explain(`recorded (${head.reads.length + body.reads.length} reads)`)
    } catch (error) {
      // The memo only saves time: failing to write one costs the next plan nothing but that.
      explain(`not recorded: ${error.message}`)
    }
  })
  return { refuse }
}

const save = (bundle, key, text) => {
  const dir = memoDir(bundle)
  mkdirSync(dir, { recursive: true })
  const file = memoFile(bundle, key)
  const tmp = `${file}.${process.pid}.tmp`
  try {
    // Readable by its owner only: it holds what the plan printed and which files it read.
    writeFileSync(tmp, text, { encoding: "latin1", mode: 0o600 })
    renameSync(tmp, file)
  } finally {
    rmSync(tmp, { force: true })
  }
  const memos = readdirSync(dir).filter((name) => name.endsWith(".json"))
  if (memos.length > KEEP) {
    const byAge = memos.map((name) => ({ name, mtime: statSync(path.join(dir, name)).mtimeMs }))
      .sort((a, b) => a.mtime - b.mtime)
    for (const { name } of byAge.slice(0, memos.length - KEEP)) rmSync(path.join(dir, name), { force: true })
  }
}

module.exports = { memoDir, memoizable, record, replay }
