// Builds the numerical worker (kernels/build/flame-worker) with `make -C kernels -j2`.
// Run by `npm install` (postinstall) and `npm run build:worker`. Fails loudly: a missing compiler
// or a compile error stops the install with make's output and a non-zero exit code.
//
// `--cuda` (or FLAME_BUILD_CUDA=1) also builds the CUDA backend, kernels/build/flame-worker-cuda
// and the GPU test program (`make -C kernels cuda`, needs nvcc; a few minutes on two cores), which
// the default install skips so that it stays quick and needs no CUDA toolkit.
import { spawnSync } from "node:child_process"
import { existsSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const kernels = join(root, "kernels")

if (process.env.FLAME_SKIP_WORKER_BUILD === "1") {
  console.warn("build-worker: FLAME_SKIP_WORKER_BUILD=1, not building kernels/build/flame-worker")
  process.exit(0)
}
const cuda = process.argv.includes("--cuda") || process.env.FLAME_BUILD_CUDA === "1"

const make = process.env.MAKE ?? "make"
const build = (targets, what) => {
  const result = spawnSync(make, ["-C", kernels, "-j2", ...targets], { stdio: "inherit" })
  if (result.error !== undefined) {
    console.error(`build-worker: could not run ${make}: ${result.error.message} (need make and ${what})`)
    process.exit(1)
  }
  if (result.status !== 0) {
    console.error(
      `build-worker: make -C kernels ${targets.join(" ")} failed with exit code ${
        result.status ?? `signal ${result.signal}`
      }`
    )
    process.exit(result.status ?? 1)
  }
}
const check = (binary) => {
  if (!existsSync(binary)) {
    console.error(`build-worker: make succeeded but ${binary} is missing`)
    process.exit(1)
  }
  console.log(`build-worker: built ${binary}`)
}

build([], "g++ >= 9 with OpenMP")
check(join(kernels, "build", "flame-worker"))
if (cuda) {
  build(["cuda"], "nvcc (CUDA >= 12) for the CUDA backend")
  check(join(kernels, "build", "flame-worker-cuda"))
}
