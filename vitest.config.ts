import { defineConfig } from "vitest/config"

// Three projects, all run by `vitest run`:
// - `unit` is fast and in-process: no Python, no tokenizers library, no child processes to wait on.
// - `oracle` compares our implementations with independent ones (CPython, numpy, scipy, Hugging Face's
//   tokenizers, bash, the CLI in a child process): slower, and needs what README lists installed.
// - `integration` drives the real CLI and the compiled worker.
export default defineConfig({
  test: {
    // Vitest reads a pool's isolation from the root config, for every project that uses that pool:
    // only `unit` runs in threads. Its tests share no global state (each makes its own temporary
    // workspace and layers), so a worker keeps the modules it loaded across files: loading effect and
    // the engine once per worker instead of once per file takes the project from about 70 s to 25 s.
    poolOptions: { threads: { isolate: false } },
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          testTimeout: 30_000,
          pool: "threads"
        }
      },
      {
        test: {
          name: "oracle",
          include: ["test/oracle/**/*.test.ts"],
          testTimeout: 120_000
        }
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          testTimeout: 1_200_000,
          hookTimeout: 1_200_000,
          // The machines have two cores; integration tests spawn CPU-heavy workers.
          poolOptions: { forks: { singleFork: true } },
          pool: "forks"
        }
      }
    ]
  }
})
