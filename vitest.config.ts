import { defineConfig } from "vitest/config"

/**
 * Three tiers, each a vitest project (`vitest run --project unit`, or `npm run test:unit` and its siblings):
 * - unit: pure decisions (test/unit mirrors src/): no tmux, no processes, no PostgreSQL;
 * - integration: one service against real tmux, files, processes and PostgreSQL;
 * - system: the compiled CLI, the MCP servers, multi-process races, chaos and the benchmark (needs `npm run build`).
 */
export default defineConfig({
  test: {
    // Real tmux servers and child processes: two cores, so at most two test files at a time.
    maxWorkers: 2,
    // A guard against hangs, not a budget: tests wait for conditions, and a loaded 2-core machine runs the CLI-heavy
    // ones at a third of their quiet speed (a test that takes 40 s alone has taken 60 s beside the race suites).
    testTimeout: 300_000,
    hookTimeout: 300_000,
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          // Pure tests share nothing global: one module graph per worker thread (Effect is loaded once, not per file).
          pool: "threads",
          isolate: false,
          testTimeout: 60_000
        }
      },
      {
        extends: true,
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          // A throwaway PostgreSQL for the PostgreSQL registry's tests (or SPAWNKIT_TEST_DATABASE_URL), and a fresh
          // TMUX_TMPDIR that must hold no tmux socket at the end.
          globalSetup: ["test/support/PgGlobalSetup.ts", "test/support/TmuxGlobalSetup.ts"]
        }
      },
      {
        extends: true,
        test: {
          name: "system",
          include: ["test/system/**/*.test.ts"],
          globalSetup: ["test/support/PgGlobalSetup.ts", "test/support/TmuxGlobalSetup.ts"]
        }
      }
    ]
  }
})
