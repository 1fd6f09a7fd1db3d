// Builds the numerical worker (kernels/build/flame-worker) with `make -C kernels -j2`.
// Run by `npm install` (postinstall) and `npm run build:worker`. Fails loudly: a missing compiler
// or a compile error stops the install with make's output and a non-zero exit code.
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

const make = process.env.MAKE ?? "make"
const result = spawnSync(make, ["-C", kernels, "-j2"], { stdio: "inherit" })
if (result.error !== undefined) {
  console.error(`build-worker: could not run ${make}: ${result.error.message} (need make and g++ >= 9 with OpenMP)`)
  process.exit(1)
}
if (result.status !== 0) {
  console.error(`build-worker: make -C kernels failed with exit code ${result.status ?? `signal ${result.signal}`}`)
  process.exit(result.status ?? 1)
}
const binary = join(kernels, "build", "flame-worker")
if (!existsSync(binary)) {
  console.error(`build-worker: make succeeded but ${binary} is missing`)
  process.exit(1)
}
console.log(`build-worker: built ${binary}`)
