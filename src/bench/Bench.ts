/**
 * The benchmark harness: the scenarios (Scenarios.ts) run one after another in one invocation, each in its own
 * environment (a temporary home and tmux server, and a database of its own on PostgreSQL), then the home-size
 * measurement on each registry, the start-up, the exit-latency, the budget-stop, the worktree-spawn and the
 * broker-footprint measurements.
 *
 * Everything a run acquires (homes, tmux servers, worker processes, MCP servers, the throwaway PostgreSQL cluster
 * and its databases) belongs to a Scope and is released by it, in reverse order, whether the run ends, fails or is
 * interrupted (Ctrl-C). Figures per scenario: throughput, latency percentiles, registry lock wait, lost updates,
 * twins, overshoot and orphans after the run, and throughput as a fraction of the floor. Report.ts writes them.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import { type BrokerFootprintResult, measureBrokerFootprint } from "./BrokerFootprint.js"
import { type BudgetStopResult, measureBudgetStop } from "./BudgetStop.js"
import { scenarioEnv } from "./Environment.js"
import { type ExitLatencyResult, measureExitLatency } from "./ExitLatency.js"
import { type HomeSizeResult, measureHomeSize } from "./HomeSize.js"
import { type PostgresServer, postgresServer, scenarioDatabase } from "./Postgres.js"
import { BenchFailed, benchFailed, type Scenario, type ScenarioResult } from "./Scenario.js"
import { scenarios } from "./Scenarios.js"
import { measureStartup, type StartupReport } from "./Startup.js"
import { workerScript } from "./Workers.js"
import { measureWorktreeSpawn, type WorktreeSpawnResult } from "./WorktreeSpawn.js"

export { BenchFailed, type ScenarioResult } from "./Scenario.js"

/** What to run. */
export interface BenchOptions {
  /** Concurrent processes (P). */
  readonly processes: number
  /** Spawns per process (N). */
  readonly spawns: number
  /** Tasks of the many-tasks scenario. */
  readonly tasks: number
  /** Records already in the registry for the growth scenarios. */
  readonly growth: ReadonlyArray<number>
  /** Sequential spawns measured per growth scenario. */
  readonly growthSpawns: number
  /** The agent command every scenario starts. */
  readonly command: ReadonlyArray<string>
  /** Where results are written. */
  readonly outDir: string
  /** Only scenarios whose name contains one of these (all when empty). */
  readonly only: ReadonlyArray<string>
  /** Progress lines on stderr. */
  readonly progress: (text: string, transient: boolean) => void
  /** Finished tasks added to the home of the home-size measurement (0: not measured). */
  readonly homeFinished: number
  /** Active tasks (one live agent each) of the home-size measurement. */
  readonly homeActive: number
  /**
   * PostgreSQL for the `-pg` scenarios: a server URL (each scenario gets its own new database on it), `auto` (a
   * throwaway loopback cluster started with scripts/pg-temp.sh when PostgreSQL is installed, else none), or `off`.
   */
  readonly postgres: string
  /** Rounds of the start-up measurement (Startup.ts); 0 or none skips it. */
  readonly startupRounds?: number
  /** Agents of the exit-latency measurement (ExitLatency.ts), per mode; 0 or none skips it. */
  readonly exits?: number
  /** Agents of the exit-latency measurement let go at once. */
  readonly exitBatch?: number
  /** Rounds of the budget-stop measurement (BudgetStop.ts), per registry; 0 or none skips it. */
  readonly budgetRounds?: number
  /** Rounds of the worktree-spawn measurement (WorktreeSpawn.ts); 0 or none skips it. */
  readonly worktreeRounds?: number
  /** Agents of the broker-footprint measurement (BrokerFootprint.ts); 0 or none skips it. */
  readonly footprintAgents?: number
}

/** What a run measured. */
export interface BenchRun {
  readonly results: ReadonlyArray<ScenarioResult>
  readonly homeSize: ReadonlyArray<HomeSizeResult>
  readonly notes: ReadonlyArray<string>
  /** The start-up measurement, when it ran. */
  readonly startup?: StartupReport
  /** The exit-latency measurement, supervisor and pane-died hook, when it ran. */
  readonly exitLatency?: ReadonlyArray<ExitLatencyResult>
  /** The budget-stop measurement, per registry, when it ran. */
  readonly budgetStop?: ReadonlyArray<BudgetStopResult>
  /** The worktree-spawn measurement, when it ran. */
  readonly worktreeSpawn?: WorktreeSpawnResult
  /** The broker-footprint measurement, when it ran. */
  readonly brokerFootprint?: BrokerFootprintResult
}

/** Passes timed per home and operation in the home-size measurement. */
export const HOME_SIZE_PASSES = 15
/** Agents per finished task of the home-size measurement. */
const HOME_SIZE_AGENTS_PER_TASK = 10

/** One scenario in an environment of its own (and a database of its own on PostgreSQL), released after it. */
const runScenario = (o: BenchOptions, s: Scenario, label: string, server: string | undefined) =>
  Effect.scoped(Effect.gen(function*() {
    const database = s.postgres === true && server !== undefined ? yield* scenarioDatabase(server) : undefined
    const env = yield* scenarioEnv(s.name, o.command, database)
    o.progress(`${label}: started`, false)
    const started = yield* Clock.currentTimeMillis
    const f = yield* s.run(env, (done) => o.progress(`${label} ${done}/${s.total}`, true))
    const seconds = ((yield* Clock.currentTimeMillis) - started) / 1000
    o.progress(`${label}: ${f.ok} spawns, ${f.throughput}/s, p50 ${f.latency.p50} ms (${seconds.toFixed(1)} s)`, false)
    return { name: s.name, design: s.design, description: s.description, ...f } satisfies ScenarioResult
  }))

/** The home-size measurement on one backend, in a home (and database) of its own. */
const homeSizeOn = (o: BenchOptions, backend: HomeSizeResult["backend"], server: string | undefined) =>
  Effect.scoped(Effect.gen(function*() {
    const database = backend === "postgresql" && server !== undefined ? yield* scenarioDatabase(server) : undefined
    const env = yield* scenarioEnv(`home-size-${backend}`, o.command, database)
    const result = yield* measureHomeSize(
      { home: env.home, layer: env.layer, ...(database !== undefined ? { database } : {}) },
      backend,
      {
        finishedTasks: o.homeFinished,
        activeTasks: o.homeActive,
        agentsPerTask: HOME_SIZE_AGENTS_PER_TASK,
        passes: HOME_SIZE_PASSES
      },
      (text) => o.progress(text, true)
    )
    o.progress(
      `home-size (${backend}): reconcile p50 ${result.reconcile.small.p50} -> ${result.reconcile.large.p50} ms, ` +
        `status p50 ${result.status.small.p50} -> ${result.status.large.p50} ms`,
      false
    )
    return result
  }))

/** Throughput as a fraction of the floor's, on every result (none without a floor that made spawns). */
const withFloorRatios = (results: ReadonlyArray<ScenarioResult>): ReadonlyArray<ScenarioResult> => {
  const floor = results.find((r) => r.name === "floor")
  if (floor === undefined || floor.throughput <= 0) return results
  return results.map((r) => ({ ...r, floorRatio: Math.round((r.throughput / floor.throughput) * 100) / 100 }))
}

/** Whether the options select a measurement run after the scenarios: asked for (`size` > 0) and named by `--only`. */
const wanted = (o: BenchOptions, name: string, size: number | undefined) =>
  (size ?? 0) > 0 && (o.only.length === 0 || o.only.some((x) => name.includes(x)))

/** The scenarios the options select (the floor always, since every ratio is taken against it). */
const selected = (o: BenchOptions) =>
  scenarios(o).filter((s) => o.only.length === 0 || s.name === "floor" || o.only.some((x) => s.name.includes(x)))

/**
 * Run the selected scenarios in order, then the home-size measurement, and return the results. Interrupting it
 * (Ctrl-C) releases everything it acquired before it returns.
 */
export const runBench = Effect.fn("Bench.run")(function*(o: BenchOptions) {
  const fs = yield* FileSystem.FileSystem
  if (!(yield* fs.exists(workerScript).pipe(Effect.mapError(benchFailed(`looking for ${workerScript}`))))) {
    return yield* new BenchFailed({ reason: `${workerScript} is missing: run npm run build first` })
  }
  const all = selected(o)
  const homeSizeWanted = wanted(o, "home-size", o.homeFinished)
  const budgetWanted = wanted(o, "budget-stop", o.budgetRounds)
  return yield* Effect.scoped(Effect.gen(function*() {
    const server: PostgresServer | undefined = all.some((s) => s.postgres === true) || homeSizeWanted || budgetWanted
      ? yield* postgresServer(o.postgres)
      : undefined
    const url = server?._tag === "Server" ? server.url : undefined
    const run = url === undefined ? all.filter((s) => s.postgres !== true) : all
    const results: Array<ScenarioResult> = []
    for (const [n, s] of run.entries()) {
      results.push(yield* runScenario(o, s, `[${n + 1}/${run.length}] ${s.name}`, url))
    }
    const homeSize = homeSizeWanted
      ? yield* Effect.forEach(
        url === undefined ? ["file" as const] : ["file" as const, "postgresql" as const],
        (backend) => homeSizeOn(o, backend, url)
      )
      : []
    const rounds = o.startupRounds ?? 0
    if (rounds > 0) o.progress(`start-up: ${rounds} rounds ...`, false)
    const startup = rounds > 0 ? yield* measureStartup(rounds) : undefined
    const exits = o.exits ?? 0
    const exitsWanted = wanted(o, "exit-latency", exits)
    if (exitsWanted) o.progress(`exit latency: ${exits} exits per mode ...`, false)
    const exitLatency = exitsWanted
      ? yield* measureExitLatency(exits, o.exitBatch ?? 10, (text) => o.progress(text, false))
      : undefined
    if (budgetWanted) o.progress(`budget stop: ${o.budgetRounds} rounds per registry ...`, false)
    const budgetStop = budgetWanted
      ? yield* measureBudgetStop(o.budgetRounds ?? 0, url, (text) => o.progress(text, false))
      : undefined
    const worktreeWanted = wanted(o, "worktree-spawn", o.worktreeRounds)
    if (worktreeWanted) o.progress(`worktree spawn: ${o.worktreeRounds} rounds ...`, false)
    const worktreeSpawn = worktreeWanted
      ? yield* measureWorktreeSpawn(o.worktreeRounds ?? 0, (text) => o.progress(text, false))
      : undefined
    const footprintWanted = wanted(o, "broker-footprint", o.footprintAgents)
    if (footprintWanted) o.progress(`broker footprint: ${o.footprintAgents} agents ...`, false)
    const brokerFootprint = footprintWanted
      ? yield* measureBrokerFootprint(o.footprintAgents ?? 0, (text) => o.progress(text, false))
      : undefined
    return {
      results: withFloorRatios(results),
      homeSize,
      notes: server?._tag === "Skipped" ? [server.note] : [],
      ...(startup === undefined ? {} : { startup }),
      ...(exitLatency === undefined ? {} : { exitLatency }),
      ...(budgetStop === undefined ? {} : { budgetStop }),
      ...(worktreeSpawn === undefined ? {} : { worktreeSpawn }),
      ...(brokerFootprint === undefined ? {} : { brokerFootprint })
    } satisfies BenchRun
  }))
})
