import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // A throwaway PostgreSQL for the PostgreSQL registry's tests (or SPAWNKIT_TEST_DATABASE_URL).
    globalSetup: ["test/support/PgGlobalSetup.ts"],
    // Real tmux servers and child processes: two cores, so at most two test files at a time.
    maxWorkers: 2,
    // A guard against hangs, not a budget: tests wait for conditions, and a loaded 2-core machine runs the CLI-heavy
    // ones at a third of their quiet speed (a test that takes 40 s alone has taken 60 s beside the race suites).
    testTimeout: 300_000,
    hookTimeout: 300_000
  }
})
