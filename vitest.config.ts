import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // A throwaway PostgreSQL for the PostgreSQL registry's tests (or SPAWNKIT_TEST_DATABASE_URL).
    globalSetup: ["test/support/PgGlobalSetup.ts"],
    // Real tmux servers and child processes: two cores, so at most two test files at a time.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000
  }
})
