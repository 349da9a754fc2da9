/**
 * The benchmark's scenarios, in the order they run: the floor (bare tmux), spawnkit and the older unlocked design
 * side by side on the same loads (throughput into one task and many, contention on the same jobs), spawnkit as its
 * registry grows, and the MCP path. Every spawnkit scenario but the MCP one also runs on PostgreSQL (`-pg`).
 * A new scenario is one more entry in the list `scenarios` returns.
 */
import * as Effect from "effect/Effect"
import { spawnkitAudit, unlockedAudit } from "./Audit.js"
import type { BenchOptions } from "./Bench.js"
import type { ScenarioEnv } from "./Environment.js"
import { figures } from "./Figures.js"
import { createTasks, distinctAttempts, legacyTaskIds, populate, split } from "./Fixtures.js"
import { mcpStdio } from "./McpStdio.js"
import { benchFailed, type Design, type Progress, type Scenario, type ScenarioFigures } from "./Scenario.js"
import { createLegacyTask } from "./Unlocked.js"
import type { Attempt } from "./WorkerProtocol.js"
import { runWorkers } from "./Workers.js"

/** Agents a task of the old design may have in its lifetime at least (its default max_agents). */
const LEGACY_MIN_MAX_AGENTS = 45
/** The contention scenarios' concurrency limit at most. */
const CONTENTION_LIMIT = 20

/** A callback counting the spawns done. */
const counter = (progress: Progress) => {
  let done = 0
  return () => progress(++done)
}

/** The tasks a design's run spawns into: spawnkit's through the API, the old design's as its files. */
const tasksOf = (env: ScenarioEnv, design: Design, tasks: number, limit: number) =>
  Effect.gen(function*() {
    if (design === "spawnkit") return yield* createTasks(env, tasks, limit)
    const taskIds = legacyTaskIds(tasks)
    if (design === "unlocked") {
      yield* Effect.forEach(taskIds, (id) =>
        createLegacyTask(env.home, id, { maxConcurrent: limit, maxAgents: Math.max(limit, LEGACY_MIN_MAX_AGENTS) }), {
        discard: true
      }).pipe(Effect.mapError(benchFailed("creating the old design's tasks")))
    }
    return taskIds
  })

/**
 * One design's run: its tasks, one worker process per attempt list, then the figures and the audit of what the
 * run left.
 */
const runDesign = (
  o: BenchOptions,
  design: Design,
  tasks: number,
  limit: number,
  attemptsOf: (taskIds: ReadonlyArray<string>) => ReadonlyArray<ReadonlyArray<Attempt>>
) =>
(env: ScenarioEnv, progress: Progress) =>
  Effect.gen(function*() {
    const taskIds = yield* tasksOf(env, design, tasks, limit)
    const specs = attemptsOf(taskIds).map((attempts) => ({
      mode: design,
      attempts,
      socket: env.socket,
      command: o.command,
      home: env.home
    }))
    const f = figures(yield* runWorkers(specs, env, counter(progress)))
    const audit = design === "spawnkit"
      ? yield* spawnkitAudit(env, f.ok)
      : design === "unlocked"
      ? yield* unlockedAudit(env, taskIds, limit)
      : {}
    return { ...f, ...audit } satisfies ScenarioFigures
  })

/** One process, `growthSpawns` spawns one after another into a new task of a home holding `records` records. */
const growthOn = (o: BenchOptions, records: number) => (env: ScenarioEnv, progress: Progress) =>
  Effect.gen(function*() {
    yield* populate(env, records)
    const [taskId] = yield* createTasks(env, 1, o.growthSpawns)
    const specs = [{ mode: "spawnkit" as const, attempts: distinctAttempts([taskId!], o.growthSpawns, "g") }]
    const f = figures(yield* runWorkers(specs, env, counter(progress)))
    return { ...f, ...(yield* spawnkitAudit(env, f.ok)), existingRecords: records } satisfies ScenarioFigures
  })

/** The same scenario on a PostgreSQL registry. */
const onPostgres = (s: Scenario): Scenario => ({
  ...s,
  name: `${s.name}-pg`,
  description: `${s.description}, PostgreSQL registry`,
  postgres: true
})

/** Every scenario of a run with these options, in order (selection happens in Bench.ts). */
export const scenarios = (o: BenchOptions): ReadonlyArray<Scenario> => {
  const P = o.processes
  const total = P * o.spawns
  // Distinct jobs, split over the processes, with limits that admit them all.
  const throughputOn = (design: Design, tasks: number) =>
    runDesign(o, design, tasks, total, (taskIds) => split(distinctAttempts(taskIds, total, "w"), P))
  // The same `spawns` jobs attempted by every process, against a limit below the job count.
  const contentionLimit = Math.max(1, Math.min(CONTENTION_LIMIT, o.spawns - 1))
  const contentionOn = (design: Design) =>
    runDesign(
      o,
      design,
      1,
      contentionLimit,
      (taskIds) => Array.from({ length: P }, () => distinctAttempts(taskIds, o.spawns, "job"))
    )
  const withPg = (s: Scenario): ReadonlyArray<Scenario> => (o.postgres === "off" ? [s] : [s, onPostgres(s)])
  return [
    {
      name: "floor",
      design: "floor",
      description: `bare tmux new-session, ${P} processes x ${o.spawns}`,
      total,
      run: throughputOn("floor", 1)
    },
    ...withPg({
      name: "spawnkit-one-task",
      design: "spawnkit",
      description: `${P} processes x ${o.spawns} spawns into one task`,
      total,
      run: throughputOn("spawnkit", 1)
    }),
    ...withPg({
      name: "spawnkit-many-tasks",
      design: "spawnkit",
      description: `${P} processes x ${o.spawns} spawns over ${o.tasks} tasks`,
      total,
      run: throughputOn("spawnkit", o.tasks)
    }),
    {
      name: "unlocked-one-task",
      design: "unlocked",
      description: `the old design, ${P} processes x ${o.spawns} into one task`,
      total,
      run: throughputOn("unlocked", 1)
    },
    ...withPg({
      name: "spawnkit-contention",
      design: "spawnkit",
      description: `${P} processes each try the same ${o.spawns} jobs, limit ${contentionLimit}`,
      total,
      run: contentionOn("spawnkit")
    }),
    {
      name: "unlocked-contention",
      design: "unlocked",
      description: `the old design, ${P} processes each try the same ${o.spawns} jobs, limit ${contentionLimit}`,
      total,
      run: contentionOn("unlocked")
    },
    ...o.growth.flatMap((records) =>
      withPg({
        name: `spawnkit-growth-${records}`,
        design: "spawnkit",
        description: `${o.growthSpawns} sequential spawns with ${records} records already in the registry`,
        total: o.growthSpawns,
        run: growthOn(o, records)
      })
    ),
    {
      name: "spawnkit-mcp-stdio",
      design: "spawnkit",
      description: `${P} stdio MCP servers x ${o.spawns} deploy_headless_agent calls`,
      total,
      run: mcpStdio(P, o.spawns)
    }
  ]
}
