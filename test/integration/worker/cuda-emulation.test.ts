// The CUDA backend's code on the CPU emulation (kernels/emu/README.md), where no GPU is lent:
// the emulation's own tests, the GPU test program (every kernel against its CPU reference, whole
// model steps, training, checkpoints across backends) with the threads of each block run in two
// orders and under AddressSanitizer, and the end-to-end CLI parity harness. This checks the backend's logic; only a GPU run
// of `npm run test:gpu` checks the backend on the hardware.
import { execa } from "execa"
import { join } from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { kernelsDir } from "./helpers.ts"

const emu = join(kernelsDir, "build", "emu")
const env = { FLAME_CUBLAS: join(emu, "libcublas-emu.so"), OMP_NUM_THREADS: "2" }

const run = (file: string, args: ReadonlyArray<string> = [], extra: Record<string, string> = {}) =>
  execa(file, args, { reject: false, all: true, env: { ...env, ...extra } })

beforeAll(async () => {
  await execa("make", ["-C", kernelsDir, "-j2", "all", "cuda-emu"])
})

describe("CUDA backend on the CPU emulation", () => {
  it("the emulation runs CUDA code as a GPU would, and refuses what a GPU refuses", async () => {
    const runtime = await run(join(emu, "test-emu"))
    expect(runtime.exitCode, String(runtime.all)).toBe(0)
    expect(String(runtime.all)).toMatch(/\d+ checks, 0 failures/)
    const blas = await run(join(emu, "test-cublas"), [join(emu, "libcublas-emu.so")])
    expect(blas.exitCode, String(blas.all)).toBe(0)
    expect(String(blas.all)).toMatch(/\d+ checks, 0 failed/)
  })

  it("passes the GPU test program, blocks in parallel", async () => {
    const r = await run(join(emu, "test-cuda-emu"))
    expect(r.exitCode, String(r.all)).toBe(0)
    expect(String(r.all)).toMatch(/\d+ checks, 0 failures/)
  })

  it("passes it with the threads of every block in a shuffled order (a race would show)", async () => {
    const r = await run(join(emu, "test-cuda-emu"), [], { FLAME_EMU_SCHEDULE: "shuffle:20261201" })
    expect(r.exitCode, String(r.all)).toBe(0)
    expect(String(r.all)).toMatch(/\d+ checks, 0 failures/)
  })

  it("passes them under AddressSanitizer (an out-of-bounds access in a kernel or the host code would show)", async () => {
    const r = await execa("make", ["-C", kernelsDir, "-j2", "test-cuda-emu-asan"], { reject: false, all: true })
    expect(r.exitCode, String(r.all)).toBe(0)
    expect(String(r.all)).not.toMatch(/ERROR: AddressSanitizer/)
    expect(String(r.all)).toMatch(/\d+ checks, 0 failures\n[^]*\d+ checks, 0 failed\n[^]*\d+ checks, 0 failures/)
  })

  it("passes the end-to-end CLI parity checks", async () => {
    const r = await run("python3", [join(kernelsDir, "..", "test", "gpu", "parity.py"), "--emulated"])
    expect(r.exitCode, String(r.all)).toBe(0)
    expect(String(r.all)).toMatch(/parity: \d+ passed, 0 failed/)
  })
})
