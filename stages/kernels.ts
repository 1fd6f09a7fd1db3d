/**
 * compile-kernels: builds the worker from its sources as a cached stage. The binary's content hash
 * is what every worker stage downstream consumes, so a source change that compiles to the same
 * bytes (a comment, a reformat) reruns only this stage: early cutoff.
 */
import { Effect, Schema } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { StageFailed } from "../src/domain/Errors.ts"
import type { ExecutorInfo } from "../src/Stage.ts"
import { define } from "../src/Stage.ts"
import { runCommand } from "../src/worker/processGroup.ts"
import { logTail } from "../src/worker/runWorker.ts"

/** The line of `<program> --version` that identifies it (the first, by default); "unavailable" when it does not run. */
const versionLine = (
  program: string,
  pick = (lines: ReadonlyArray<string>): string | undefined => lines[0]
): string => {
  try {
    const out = execFileSync(program, ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] })
    return (pick(out.split("\n")) ?? out).trim()
  } catch {
    return "unavailable"
  }
}

/** The worker binary GPU stages run: the CUDA build where the executor has GPUs (it runs the CPU backend too). */
export const workerOutput = (executor: ExecutorInfo): "flame-worker" | "flame-worker-cuda" =>
  executor.gpus > 0 ? "flame-worker-cuda" : "flame-worker"

// nvcc prints its banner first; the release line is the one that identifies it.
const nvccRelease = (nvcc: string): string => versionLine(nvcc, (lines) => lines.find((l) => l.includes("release")))

export const compileKernels = define({
  kind: "compile-kernels",
  version: "2",
  params: Schema.Struct({
    compiler: Schema.optionalWith(Schema.String, { default: () => "g++" }),
    /** Filled in from `<compiler> --version` before fingerprinting: a compiler upgrade rebuilds. */
    compilerVersion: Schema.optionalWith(Schema.String, { default: () => "" }),
    /** Also build flame-worker-cuda (the worker with the CUDA backend linked in) with nvcc. */
    cuda: Schema.optionalWith(Schema.Boolean, { default: () => false }),
    nvcc: Schema.optionalWith(Schema.String, { default: () => "nvcc" }),
    /** `nvcc --version`, settled like compilerVersion; empty when cuda is off. */
    nvccVersion: Schema.optionalWith(Schema.String, { default: () => "" })
  }),
  settle: (params) => ({
    ...params,
    compilerVersion: versionLine(params.compiler),
    nvccVersion: params.cuda ? nvccRelease(params.nvcc) : ""
  }),
  outputs: (p): Record<string, "file"> =>
    p.cuda ? { "flame-worker": "file", "flame-worker-cuda": "file" } : { "flame-worker": "file" },
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
      if (ctx.params.cuda && ctx.params.nvccVersion === "unavailable") {
        return yield* new StageFailed({
          stage: ctx.stageId,
          reason: `the CUDA backend needs nvcc ('${ctx.params.nvcc}' not found; install the CUDA toolkit or ` +
            `set compile-kernels.nvcc=/path/to/nvcc)`
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
      const targets = ctx.params.cuda
        ? ["build/flame-worker", "build/flame-worker-cuda", `NVCC=${ctx.params.nvcc}`]
        : ["build/flame-worker"]
      // make and the compilers it starts are one process group, recorded like a worker: should the engine
      // be killed mid-build, the next run stops them before they write any more into staging.
      const build = yield* runCommand("make", ["-C", tree, `-j${ctx.cpus}`, `CXX=${ctx.params.compiler}`, ...targets], {
        logPath: ctx.logPath,
        onStart: (pid) => Effect.runSync(ctx.workerStarted(pid))
      })
      if (build.exitCode !== 0) {
        return yield* new StageFailed({
          stage: ctx.stageId,
          reason: build.startError !== undefined
            ? `cannot run make: ${build.startError} (Debian: apt-get install make)`
            : `make failed (exit ${build.exitCode ?? build.signal}):\n${logTail(ctx.logPath, 15).join("\n")}`
        })
      }
      let bytes = 0
      for (const name of Object.keys(compileKernels.outputs(ctx.params))) {
        const binary = ctx.output(name)
        fs.copyFileSync(path.join(tree, "build", name), binary)
        fs.chmodSync(binary, 0o755)
        bytes += fs.statSync(binary).size
      }
      // Object files are not outputs; dropping them keeps the promoted artifact small.
      fs.rmSync(tree, { recursive: true, force: true })
      return { bytes }
    }),
  reproducibility: { _tag: "bitwise" }
})
