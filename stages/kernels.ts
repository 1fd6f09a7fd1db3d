/**
 * compile-kernels: builds the worker from its sources as a cached stage. The binary's content hash
 * is what every worker stage downstream consumes, so a source change that compiles to the same
 * bytes (a comment, a reformat) reruns only this stage: early cutoff.
 */
import { Effect, Schema } from "effect"
import { execa } from "execa"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { StageFailed } from "../src/domain/Errors.ts"
import { define } from "../src/Stage.ts"
import { logTail } from "../src/worker/runWorker.ts"

export const compilerVersion = (compiler: string): string => {
  try {
    return execFileSync(compiler, ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).split(
      "\n"
    )[0]!
      .trim()
  } catch {
    return "unavailable"
  }
}

export const compileKernels = define({
  kind: "compile-kernels",
  version: "1",
  params: Schema.Struct({
    compiler: Schema.optionalWith(Schema.String, { default: () => "g++" }),
    /** Filled in from `<compiler> --version` before fingerprinting: a compiler upgrade rebuilds. */
    compilerVersion: Schema.optionalWith(Schema.String, { default: () => "" })
  }),
  settle: (params) => ({ ...params, compilerVersion: compilerVersion(params.compiler) }),
  outputs: () => ({ "flame-worker": "file" }),
  result: Schema.Struct({ bytes: Schema.Number }),
  resources: () => ({ cpus: 2 }),
  run: (ctx) =>
    Effect.gen(function*() {
      if (ctx.params.compilerVersion === "unavailable") {
        return yield* new StageFailed({
          stage: ctx.stageId,
          reason: `compiler '${ctx.params.compiler}' not found (Debian: apt-get install g++ make)`
        })
      }
      const tree = path.join(ctx.workDir, "kernels")
      yield* Effect.try({
        try: () => {
          fs.rmSync(tree, { recursive: true, force: true })
          fs.mkdirSync(tree, { recursive: true })
          fs.cpSync(ctx.inputs.sources!, path.join(tree, "src"), { recursive: true })
          fs.copyFileSync(ctx.inputs.makefile!, path.join(tree, "Makefile"))
        },
        catch: (e) => new StageFailed({ stage: ctx.stageId, reason: `cannot lay out the sources: ${String(e)}` })
      })
      const build = yield* Effect.promise(() =>
        execa("make", ["-C", tree, `-j${ctx.cpus}`, `CXX=${ctx.params.compiler}`, "build/flame-worker"], {
          reject: false,
          stdio: ["ignore", { file: ctx.logPath, append: true }, { file: ctx.logPath, append: true }]
        })
      )
      if (build.exitCode !== 0) {
        return yield* new StageFailed({
          stage: ctx.stageId,
          reason: `make failed (exit ${build.exitCode}):\n${logTail(ctx.logPath, 15).join("\n")}`
        })
      }
      const binary = ctx.output("flame-worker")
      fs.copyFileSync(path.join(tree, "build", "flame-worker"), binary)
      fs.chmodSync(binary, 0o755)
      // Object files are not outputs; dropping them keeps the promoted artifact small.
      fs.rmSync(tree, { recursive: true, force: true })
      return { bytes: fs.statSync(binary).size }
    }),
  reproducibility: { _tag: "bitwise" }
})
