import { defineConfig } from "vitest/config"

// Two projects: `unit` is fast and pure; `integration` drives the real CLI and the compiled worker.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          testTimeout: 30_000
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
