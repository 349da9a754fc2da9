/**
 * The benchmark harness: concurrent spawn scenarios run side by side in one invocation, each in its own temporary
 * home and tmux socket, with the physical floor (bare tmux) and the older unlocked design beside spawnkit.
 *
 * Figures per scenario: throughput, latency percentiles, registry lock wait, lost updates, twins, overshoot and
 * orphans after the run, and throughput as a fraction of the floor. Results go to `<out>/<timestamp>.json` and `.md`.
 */
import { type ChildProcess, execFile, spawn as spawnChild, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { promisify } from "node:util"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { getDefaultEnvironment, StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import pg from "pg"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type { Agent } from "../domain/Agent.js"
import type { TaskRegistry } from "../domain/Task.js"
import { type AgentId, type AgentType, ORCHESTRATOR, type SessionName, type TaskId } from "../domain/Ids.js"
import { FaultInjection } from "../faults/FaultInjection.js"
import { Registry } from "../registry/Registry.js"
import * as Spawnkit from "../Spawnkit.js"
import { reconcile } from "../spawn/Reconciler.js"
import { createTask } from "../spawn/Tasks.js"
import { cliScript, packageRoot } from "../internal/paths.js"
import { type HomeSizeResult, measureHomeSize } from "./HomeSize.js"
import { type Summary, summarize } from "./Stats.js"
import { createLegacyTask, type LegacyTask, legacyTaskFile } from "./Unlocked.js"
import type { Attempt, WorkerSpec } from "./Worker.js"
import { measureStartup, type StartupReport } from "./Startup.js"
import * as NodeServices from "@effect/platform-node/NodeServices"

const run = promisify(execFile)

/** The benchmark could not run (a worker failed, a file is missing). */
export class BenchFailed extends Schema.TaggedError<BenchFailed>()("BenchFailed", { reason: Schema.String }) {
  override get message() {
    return this.reason
  }
}
const workerScript = NodePath.join(packageRoot, "dist", "bench", "Worker.js")

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
  /** Rounds of the start-up scenario (Startup.ts); 0 or none skips it. */
  readonly startupRounds?: number
}

/** The figures of one scenario. */
export interface ScenarioResult {
  readonly name: string
  readonly design: "floor" | "spawnkit" | "unlocked"
  readonly description: string
  readonly processes: number
  readonly attempts: number
  readonly ok: number
  readonly rejected: Readonly<Record<string, number>>
  readonly wallMs: number
  readonly throughput: number
  readonly latency: Summary
  readonly lockWait?: { readonly count: number; readonly meanMs: number; readonly p50Ms: number; readonly p99Ms: number; readonly maxMs: number }
  /** Sessions started whose agent the registry does not know. */
  readonly lost?: number
  /** Agents started more than once for the same job. */
  readonly twins?: number
  /** Agents beyond the concurrency limit. */
  readonly overshoot?: number
  /** What a reconciler would have to repair after the run (sessions, records, files). */
  readonly orphans?: number
  /** Registry reads that found a torn (half-written) file. */
  readonly torn?: number
  /** Busy CPU time of the whole machine per spawn made, in ms. */
  readonly cpuMsPerSpawn: number
  /** CPU of the spawning processes themselves per spawn made, in ms (the rest is tmux and the agents). */
  readonly workerCpuMsPerSpawn: number
  /** Records in the registry before the run (growth scenarios). */
  readonly existingRecords?: number
  /** Throughput as a fraction of the floor's. */
  floorRatio?: number
}

interface Env {
  readonly dir: string
  readonly home: string
  readonly socket: string
  readonly env: Record<string, string>
  /** The scenario's own database (PostgreSQL scenarios). */
  readonly database?: { readonly name: string; readonly url: string }
}

const makeEnv = (name: string, command: ReadonlyArray<string>, database?: Env["database"]): Env => {
  const dir = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), `spawnkit-bench-${name}-`))
  const home = NodePath.join(dir, "home")
  Fs.mkdirSync(home)
  const socket = NodePath.join(dir, "tmux.sock")
  return {
    dir,
    home,
    socket,
    env: {
      SPAWNKIT_HOME: home,
      SPAWNKIT_TMUX_SOCKET: socket,
      SPAWNKIT_ENGINE: "custom",
      SPAWNKIT_AGENT_COMMAND: command.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" "),
      SPAWNKIT_GLOBAL_MAX_CONCURRENT: "100000",
      SPAWNKIT_RECONCILE_INTERVAL: "0",
      ...(database !== undefined ? { SPAWNKIT_DATABASE_URL: database.url } : {})
    },
    ...(database !== undefined ? { database } : {})
  }
}

const sessionsOf = async (socket: string): Promise<ReadonlyArray<string>> => {
  try {
    const { stdout } = await run("tmux", ["-S", socket, "list-sessions", "-F", "#{session_name}"])
    return stdout.split("\n").filter((s) => s !== "")
  } catch {
    return [] // no server: no sessions
  }
}

const cleanup = async (env: Env) => {
  await run("tmux", ["-S", env.socket, "kill-server"]).catch(() => undefined)
  Fs.rmSync(env.dir, { recursive: true, force: true })
}

/**
 * Cleanups still owed if the process exits before they run (Ctrl-C interrupts the CLI, which then exits without
 * waiting for the benchmark's promise): run synchronously from the `exit` event.
 */
const owed = new Set<() => void>()
let exitHookInstalled = false
const owe = (cleanupSync: () => void) => {
  if (!exitHookInstalled) {
    exitHookInstalled = true
    process.once("exit", () => {
      for (const f of owed) f()
    })
  }
  owed.add(cleanupSync)
  return () => void owed.delete(cleanupSync)
}

/** spawnkit's services on one scenario's home and socket. */
const layerOf = (env: Env) =>
  Spawnkit.layer({
    home: env.home,
    tmuxSocket: { _tag: "Path", path: env.socket },
    defaultEngine: "custom",
    agentCommand: Option.some(env.env["SPAWNKIT_AGENT_COMMAND"]!),
    globalMaxConcurrent: 100_000,
    faultSpec: "",
    databaseUrl: env.database === undefined ? Option.none() : Option.some(Redacted.make(env.database.url))
  }, FaultInjection.none)

/** spawnkit's operations against one scenario's home and socket. */
const withSpawnkit = <A, E>(env: Env, effect: Effect.Effect<A, E, Spawnkit.Services>) =>
  Effect.runPromise(effect.pipe(Effect.provide(layerOf(env))))

const createTasks = (env: Env, count: number, maxConcurrent: number) =>
  withSpawnkit(
    env,
    Effect.forEach(Array.from({ length: count }), () =>
      createTask({
        description: "benchmark",
        max_concurrent: maxConcurrent,
        max_agents: Math.max(maxConcurrent, 45),
        max_children_per_parent: maxConcurrent,
        max_spawns_per_minute: 1_000_000
      }).pipe(Effect.map((t) => t.task_id)))
  )

interface WorkerOutcome {
  readonly samples: Array<{ readonly ok: boolean; readonly ms: number; readonly tag?: string }>
  startMs: number
  endMs: number
  /** Busy CPU of the machine (all processes) while the workers ran, in ms. */
  cpuMs?: number
  /** CPU of the worker process itself, in ms. */
  workerCpuMs?: number
  lockWait?: { readonly buckets: ReadonlyArray<[number, number]>; readonly count: number; readonly sum: number; readonly max: number }
}

/** Busy CPU time of the whole machine so far, in ms (Linux /proc/stat; 0 elsewhere). */
const busyCpuMs = () => {
  try {
    const fields = Fs.readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number)
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0)
    return ((fields.reduce((a, b) => a + b, 0) - idle) * 1000) / 100
  } catch {
    return 0
  }
}

/** Start one worker per spec, release them together, and collect their lines. */
const runWorkers = async (
  specs: ReadonlyArray<Omit<WorkerSpec, "goFile">>,
  env: Env,
  onAttempt: () => void
): Promise<ReadonlyArray<WorkerOutcome>> => {
  const goFile = NodePath.join(env.dir, "go")
  const children: Array<ChildProcess> = []
  const results = specs.map((spec) => {
    const child = spawnChild(process.execPath, [workerScript, JSON.stringify({ ...spec, goFile })], {
      env: { ...process.env, ...env.env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    children.push(child)
    const outcome: WorkerOutcome = { samples: [], startMs: 0, endMs: 0 }
    let stderr = ""
    let buffer = ""
    let resolveReady: () => void = () => undefined
    const ready = new Promise<void>((r) => (resolveReady = r))
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()))
    child.stdout!.on("data", (d: Buffer) => {
      buffer += d.toString()
      let nl: number
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const text = buffer.slice(0, nl)
        buffer = buffer.slice(nl + 1)
        const msg = JSON.parse(text) as Record<string, unknown>
        if (msg["ready"] === true) resolveReady()
        else if (msg["done"] === true) {
          outcome.startMs = msg["startMs"] as number
          outcome.endMs = msg["endMs"] as number
          outcome.workerCpuMs = msg["workerCpuMs"] as number
          if (msg["lockWait"] !== undefined) outcome.lockWait = msg["lockWait"] as NonNullable<WorkerOutcome["lockWait"]>
        } else {
          outcome.samples.push(msg as WorkerOutcome["samples"][number])
          onAttempt()
        }
      }
    })
    const exited = new Promise<void>((resolve, reject) =>
      child.on("exit", (code) =>
        code === 0 && outcome.endMs > 0
          ? resolve()
          : reject(new Error(`benchmark worker exited with ${code}: ${stderr.slice(-2000)}`)))
    )
    return { ready, exited, outcome }
  })
  const paid = owe(() => {
    for (const child of children) if (child.exitCode === null) child.kill("SIGKILL")
  })
  try {
    await Promise.race([Promise.all(results.map((r) => r.ready)), Promise.all(results.map((r) => r.exited))])
    const cpuBefore = busyCpuMs()
    Fs.writeFileSync(goFile, "")
    await Promise.all(results.map((r) => r.exited))
    const cpuMs = busyCpuMs() - cpuBefore
    for (const r of results) r.outcome.cpuMs = cpuMs / results.length
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill("SIGKILL")
    paid()
  }
  return results.map((r) => r.outcome)
}

/** Merge the workers' cumulative lock-wait histograms and read percentiles off them (bucket upper bounds). */
const lockWaitOf = (outcomes: ReadonlyArray<WorkerOutcome>): ScenarioResult["lockWait"] => {
  const with_ = outcomes.flatMap((o) => (o.lockWait === undefined ? [] : [o.lockWait]))
  // No acquisitions: a registry without the file lock (PostgreSQL waits inside its transactions).
  if (with_.length === 0 || with_.every((h) => h.count === 0)) return undefined
  const bounds = with_[0]!.buckets.map(([b]) => b)
  const cumulative = bounds.map((_, i) => with_.reduce((n, h) => n + (h.buckets[i]?.[1] ?? 0), 0))
  const count = with_.reduce((n, h) => n + h.count, 0)
  const sum = with_.reduce((n, h) => n + h.sum, 0)
  const max = with_.reduce((n, h) => Math.max(n, h.max), 0)
  const at = (q: number) => {
    const i = cumulative.findIndex((c) => c >= q * count)
    return i < 0 ? max : Math.min(bounds[i]!, max)
  }
  const r2 = (n: number) => Math.round(n * 100) / 100
  return { count, meanMs: r2(count === 0 ? 0 : sum / count), p50Ms: r2(at(0.5)), p99Ms: r2(at(0.99)), maxMs: r2(max) }
}

const figures = (outcomes: ReadonlyArray<WorkerOutcome>) => {
  const samples = outcomes.flatMap((o) => o.samples)
  const ok = samples.filter((s) => s.ok)
  const rejected: Record<string, number> = {}
  for (const s of samples) if (!s.ok) rejected[s.tag ?? "?"] = (rejected[s.tag ?? "?"] ?? 0) + 1
  const wallMs = Math.max(...outcomes.map((o) => o.endMs)) - Math.min(...outcomes.map((o) => o.startMs))
  return {
    attempts: samples.length,
    ok: ok.length,
    rejected,
    wallMs,
    throughput: Math.round((ok.length / Math.max(wallMs, 1)) * 1000 * 10) / 10,
    latency: summarize(ok.map((s) => s.ms)),
    torn: samples.filter((s) => s.tag === "TornRead").length,
    workerCpuMsPerSpawn: Math.round((outcomes.reduce((n, o) => n + (o.workerCpuMs ?? 0), 0) / Math.max(ok.length, 1)) * 100) / 100,
    cpuMsPerSpawn: Math.round((outcomes.reduce((n, o) => n + (o.cpuMs ?? 0), 0) / Math.max(ok.length, 1)) * 100) / 100
  }
}

/** Registry-side figures of a spawnkit home after a run. */
const spawnkitAudit = async (env: Env, okCount: number) => {
  const sessions = await sessionsOf(env.socket)
  const { tasks, repairs } = await withSpawnkit(
    env,
    Effect.gen(function*() {
      const registry = yield* Registry
      const report = yield* reconcile({ dryRun: true })
      return { tasks: (yield* registry.list({ scope: "all" })).tasks, repairs: report.repairs.length }
    })
  )
  const agents: Array<Agent> = tasks.flatMap((t: TaskRegistry) => [...t.agents])
  const running = agents.filter((a) => a.status === "running")
  const jobs = new Map<string, number>()
  for (const a of running) {
    const job = `${a.parent}\u0000${a.prompt_sha256}`
    jobs.set(job, (jobs.get(job) ?? 0) + 1)
  }
  const twins = [...jobs.values()].reduce((n, c) => n + (c - 1), 0)
  const overshoot = tasks.reduce(
    (n: number, t: TaskRegistry) => n + Math.max(0, t.agents.filter((a) => a.status === "running").length - t.max_concurrent),
    0
  )
  const known = new Set<string>(running.map((a) => a.tmux_session))
  return {
    lost: Math.max(0, okCount - running.length) + sessions.filter((s) => !known.has(s)).length,
    twins,
    overshoot,
    orphans: repairs
  }
}

/** Registry-side figures of the unlocked design's home after a run. */
const unlockedAudit = async (env: Env, taskIds: ReadonlyArray<string>, limit: number) => {
  const sessions = await sessionsOf(env.socket)
  const recorded = new Set<string>()
  for (const id of taskIds) {
    try {
      const task = JSON.parse(Fs.readFileSync(legacyTaskFile(env.home, id), "utf8")) as LegacyTask
      for (const a of task.agents) recorded.add(a.tmux_session)
    } catch {
      // a torn registry at the end knows nothing
    }
  }
  const typeOf = (session: string) => session.replace(/^agent_/, "").replace(/-[0-9a-f]{6}$/, "")
  const perJob = new Map<string, number>()
  for (const s of sessions) perJob.set(typeOf(s), (perJob.get(typeOf(s)) ?? 0) + 1)
  const lost = sessions.filter((s) => !recorded.has(s)).length
  return {
    lost,
    twins: [...perJob.values()].reduce((n, c) => n + (c - 1), 0),
    overshoot: Math.max(0, sessions.length - limit * taskIds.length),
    orphans: lost
  }
}

const split = <A>(items: ReadonlyArray<A>, parts: number): Array<Array<A>> =>
  Array.from({ length: parts }, (_, w) => items.filter((_, i) => i % parts === w))

/** Attempts with distinct jobs: `count` spawns over `taskIds`, round robin. */
const distinctAttempts = (taskIds: ReadonlyArray<string>, count: number, prefix: string): Array<Attempt> =>
  Array.from({ length: count }, (_, i) => ({
    taskId: taskIds[i % taskIds.length]!,
    agentType: `${prefix}${i}`,
    prompt: `benchmark job ${i}`
  }))

type Progress = (done: number) => void

interface Scenario {
  readonly name: string
  /** Runs on a PostgreSQL registry (its own new database). */
  readonly postgres?: boolean
  readonly design: ScenarioResult["design"]
  readonly description: string
  readonly total: number
  readonly run: (env: Env, progress: Progress) => Promise<Omit<ScenarioResult, "name" | "design" | "description">>
}

const scenarios = (o: BenchOptions): ReadonlyArray<Scenario> => {
  const P = o.processes
  const total = P * o.spawns
  const counter = (progress: Progress) => {
    let done = 0
    return () => progress(++done)
  }
  /**
   * One design's run: its tasks (spawnkit's through the API, the old design's files), one worker per attempt list,
   * then the figures and the audit of what the run left.
   */
  const runDesign = async (
    env: Env,
    progress: Progress,
    design: "floor" | "spawnkit" | "unlocked",
    tasks: number,
    limit: number,
    attemptsOf: (taskIds: ReadonlyArray<string>) => ReadonlyArray<ReadonlyArray<Attempt>>
  ) => {
    const taskIds = design === "spawnkit"
      ? await createTasks(env, tasks, limit)
      : Array.from({ length: tasks }, (_, i) => `TASK-20260101-000000-${i.toString(16).padStart(8, "0")}`)
    if (design === "unlocked") {
      for (const id of taskIds) createLegacyTask(env.home, id, { maxConcurrent: limit, maxAgents: Math.max(limit, 45) })
    }
    const outcomes = await runWorkers(
      attemptsOf(taskIds).map((a) => ({ mode: design, attempts: a, socket: env.socket, command: o.command, home: env.home })),
      env,
      counter(progress)
    )
    const f = figures(outcomes)
    const audit = design === "spawnkit"
      ? await spawnkitAudit(env, f.ok)
      : design === "unlocked"
      ? await unlockedAudit(env, taskIds, limit)
      : {}
    const lockWait = lockWaitOf(outcomes)
    return { processes: P, ...f, ...(lockWait !== undefined ? { lockWait } : {}), ...audit }
  }
  // Distinct jobs, split over the processes, with limits that admit them all.
  const throughputOn = (design: "floor" | "spawnkit" | "unlocked", tasks: number): Scenario["run"] => (env, progress) =>
    runDesign(env, progress, design, tasks, total, (taskIds) => split(distinctAttempts(taskIds, total, "w"), P))
  // The same `spawns` jobs attempted by every process, against a limit below the job count.
  const contentionLimit = Math.max(1, Math.min(20, o.spawns - 1))
  const contentionOn = (design: "spawnkit" | "unlocked"): Scenario["run"] => (env, progress) =>
    runDesign(env, progress, design, 1, contentionLimit, (taskIds) => {
      const jobs = distinctAttempts(taskIds, o.spawns, "job")
      return Array.from({ length: P }, () => jobs)
    })
  const growthOn = (records: number): Scenario["run"] => async (env, progress) => {
    await populate(env, records)
    const [taskId] = await createTasks(env, 1, o.growthSpawns)
    const outcomes = await runWorkers(
      [{ mode: "spawnkit", attempts: distinctAttempts([taskId!], o.growthSpawns, "g") }],
      env,
      counter(progress)
    )
    const f = figures(outcomes)
    const lockWait = lockWaitOf(outcomes)
    return {
      processes: 1,
      ...f,
      ...(lockWait !== undefined ? { lockWait } : {}),
      ...(await spawnkitAudit(env, f.ok)),
      existingRecords: records
    }
  }
  const onPostgres = (s: Scenario): Scenario => ({
    ...s,
    name: `${s.name}-pg`,
    description: `${s.description}, PostgreSQL registry`,
    postgres: true
  })
  const withPg = (s: Scenario): ReadonlyArray<Scenario> => (o.postgres === "off" ? [s] : [s, onPostgres(s)])
  return [
    { name: "floor", design: "floor", description: `bare tmux new-session, ${P} processes x ${o.spawns}`, total, run: throughputOn("floor", 1) },
    ...withPg({ name: "spawnkit-one-task", design: "spawnkit", description: `${P} processes x ${o.spawns} spawns into one task`, total, run: throughputOn("spawnkit", 1) }),
    ...withPg({ name: "spawnkit-many-tasks", design: "spawnkit", description: `${P} processes x ${o.spawns} spawns over ${o.tasks} tasks`, total, run: throughputOn("spawnkit", o.tasks) }),
    { name: "unlocked-one-task", design: "unlocked", description: `the old design, ${P} processes x ${o.spawns} into one task`, total, run: throughputOn("unlocked", 1) },
    ...withPg({ name: "spawnkit-contention", design: "spawnkit", description: `${P} processes each try the same ${o.spawns} jobs, limit ${contentionLimit}`, total, run: contentionOn("spawnkit") }),
    { name: "unlocked-contention", design: "unlocked", description: `the old design, ${P} processes each try the same ${o.spawns} jobs, limit ${contentionLimit}`, total, run: contentionOn("unlocked") },
    ...o.growth.flatMap((records) =>
      withPg({
        name: `spawnkit-growth-${records}`,
        design: "spawnkit",
        description: `${o.growthSpawns} sequential spawns with ${records} records already in the registry`,
        total: o.growthSpawns,
        run: growthOn(records)
      })
    ),
    { name: "spawnkit-mcp-stdio", design: "spawnkit", description: `${P} stdio MCP servers x ${o.spawns} deploy_headless_agent calls`, total, run: mcpStdio(o) }
  ]
}

/** The PostgreSQL server of the `-pg` scenarios, if any: the given URL, or a throwaway cluster (`auto`). */
const postgresServer = async (
  o: BenchOptions
): Promise<{ readonly url: string; readonly stop: () => Promise<void> } | { readonly skipped: string }> => {
  if (o.postgres === "off") return { skipped: "PostgreSQL scenarios off (--postgres off)" }
  if (o.postgres !== "auto") return { url: o.postgres, stop: async () => undefined }
  const script = NodePath.join(packageRoot, "scripts", "pg-temp.sh")
  const installed = await run("bash", [script, "bindir"]).then(() => true, () => false)
  if (!installed) {
    return { skipped: "PostgreSQL scenarios skipped: no PostgreSQL installed (apt-get install postgresql, or --postgres <url>)" }
  }
  // The cluster's directory is made by the script (owned by the `postgres` user when we are root); its parent only
  // needs to be traversable.
  const parent = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "spawnkit-bench-pg-"))
  Fs.chmodSync(parent, 0o711)
  const dir = NodePath.join(parent, "cluster")
  const paid = owe(() => {
    spawnSync("bash", [script, "destroy", dir], { stdio: "ignore" })
    Fs.rmSync(parent, { recursive: true, force: true })
  })
  const stop = async () => {
    await run("bash", [script, "destroy", dir]).catch(() => undefined)
    Fs.rmSync(parent, { recursive: true, force: true })
    paid()
  }
  const started = await run("bash", [script, "start", dir]).catch(async (e: unknown) => {
    await stop()
    throw e
  })
  return { url: started.stdout.trim(), stop }
}

const adminQuery = async (url: string, sql: string) => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    await client.query(sql)
  } finally {
    await client.end()
  }
}

/** A new, empty database on the server for one scenario. */
const createDatabase = async (serverUrl: string) => {
  const name = `spawnkit_bench_${process.pid}_${Math.random().toString(16).slice(2, 10)}`
  await adminQuery(serverUrl, `CREATE DATABASE ${name}`)
  const url = new URL(serverUrl)
  url.pathname = `/${name}`
  return { name, url: url.toString() }
}

/** Records of finished agents, in tasks of 50 like real tasks (max_agents 45 by default), written through the registry. */
const populate = (env: Env, records: number) =>
  withSpawnkit(
    env,
    Effect.gen(function*() {
      const registry = yield* Registry
      const perTask = 50
      const started = new Date(Date.now() - 86_400_000).toISOString()
      for (let t = 0; t * perTask < records; t++) {
        const taskId = `TASK-20250101-000000-${t.toString(16).padStart(8, "0")}`
        const agents: Array<Agent> = Array.from({ length: Math.min(perTask, records - t * perTask) }, (_, i) => ({
          id: `old-000000-${(t * perTask + i).toString(16).padStart(8, "0")}` as AgentId,
          type: "old" as AgentType,
          tmux_session: `agent_old-000000-${(t * perTask + i).toString(16).padStart(8, "0")}` as SessionName,
          parent: ORCHESTRATOR,
          depth: 1,
          status: "completed",
          started_at: started,
          completed_at: started,
          last_update: started,
          progress: 100,
          prompt: `an earlier job, number ${t * perTask + i}, with a prompt of realistic length for the registry`,
          prompt_sha256: (t * perTask + i).toString(16).padStart(64, "0"),
          engine: "custom",
          exit: { exit_code: 0, last_lines: ["done"], at: started }
        }))
        yield* registry.createTask({
          task_id: taskId as TaskId,
          task_description: "an earlier task",
          created_at: started,
          workspace: `${env.home}/${taskId}`,
          status: "COMPLETED",
          agents,
          agent_hierarchy: {},
          max_agents: perTask,
          max_depth: 5,
          max_concurrent: 20,
          total_spawned: 0,
          active_count: 0
        })
      }
    })
  )

/** The MCP path: P stdio servers (`spawnkit serve`), each called N times, one call at a time. */
const mcpStdio = (o: BenchOptions): Scenario["run"] => async (env, progress) => {
  const total = o.processes * o.spawns
  const [taskId] = await createTasks(env, 1, total)
  const clients = await Promise.all(Array.from({ length: o.processes }, async () => {
    const client = new Client({ name: "spawnkit-bench", version: "1" })
    await client.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: [cliScript, "serve"],
        env: { ...getDefaultEnvironment(), ...env.env },
        stderr: "ignore"
      })
    )
    return client
  }))
  let done = 0
  try {
    const cpuBefore = busyCpuMs()
    const outcomes = await Promise.all(clients.map(async (client, w) => {
      const outcome: WorkerOutcome = { samples: [], startMs: Date.now(), endMs: 0 }
      for (let i = 0; i < o.spawns; i++) {
        const t0 = performance.now()
        const result = await client.callTool({
          name: "deploy_headless_agent",
          arguments: { task_id: taskId, agent_type: `m${w}-${i}`, prompt: `benchmark job ${w}-${i}` }
        })
        const ms = performance.now() - t0
        const isError = result.isError === true
        const content = result.content as ReadonlyArray<{ readonly type: string; readonly text?: string }>
        const tag = isError ? (/^(\w+):/.exec(content[0]?.text ?? "")?.[1] ?? "Error") : undefined
        outcome.samples.push({ ok: !isError, ms, ...(tag !== undefined ? { tag } : {}) })
        progress(++done)
      }
      outcome.endMs = Date.now()
      return outcome
    }))
    outcomes[0]!.cpuMs = busyCpuMs() - cpuBefore
    const f = figures(outcomes)
    return { processes: o.processes, ...f, ...(await spawnkitAudit(env, f.ok)) }
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)))
  }
}

/** What a run measured. */
export interface BenchRun {
  readonly results: ReadonlyArray<ScenarioResult>
  readonly homeSize: ReadonlyArray<HomeSizeResult>
  readonly notes: ReadonlyArray<string>
  readonly startup?: StartupReport
}

/** Passes timed per home and operation in the home-size measurement. */
export const HOME_SIZE_PASSES = 15

/** The home-size measurement on each backend, each in a home of its own. */
const runHomeSize = async (o: BenchOptions, server: string | undefined): Promise<ReadonlyArray<HomeSizeResult>> => {
  const out: Array<HomeSizeResult> = []
  for (const backend of server === undefined ? ["file" as const] : ["file" as const, "postgresql" as const]) {
    const database = backend === "postgresql" ? await createDatabase(server!) : undefined
    const env = makeEnv(`home-size-${backend}`, o.command, database)
    const paid = owe(() => {
      spawnSync("tmux", ["-S", env.socket, "kill-server"], { stdio: "ignore" })
      Fs.rmSync(env.dir, { recursive: true, force: true })
    })
    try {
      const result = await measureHomeSize(
        { home: env.home, layer: layerOf(env), ...(database !== undefined ? { database } : {}) },
        backend,
        { finishedTasks: o.homeFinished, activeTasks: o.homeActive, agentsPerTask: 10, passes: HOME_SIZE_PASSES },
        (text) => o.progress(text, true)
      )
      o.progress(
        `home-size (${backend}): reconcile p50 ${result.reconcile.small.p50} -> ${result.reconcile.large.p50} ms, ` +
          `status p50 ${result.status.small.p50} -> ${result.status.large.p50} ms`,
        false
      )
      out.push(result)
    } finally {
      await cleanup(env)
      paid()
      if (database !== undefined) await adminQuery(server!, `DROP DATABASE IF EXISTS ${database.name} WITH (FORCE)`)
    }
  }
  return out
}

/** Run the selected scenarios in order and return their results (the floor's throughput sets every ratio). */
export const runBench = async (o: BenchOptions): Promise<BenchRun> => {
  if (!Fs.existsSync(workerScript)) throw new Error(`${workerScript} is missing: run npm run build first`)
  const notes: Array<string> = []
  let selected = scenarios(o).filter((s) => o.only.length === 0 || s.name === "floor" || o.only.some((x) => s.name.includes(x)))
  const homeSizeWanted = o.homeFinished > 0 && (o.only.length === 0 || o.only.some((x) => "home-size".includes(x)))
  const server = selected.some((s) => s.postgres === true) || homeSizeWanted ? await postgresServer(o) : undefined
  if (server !== undefined && "skipped" in server) {
    notes.push(server.skipped)
    selected = selected.filter((s) => s.postgres !== true)
  }
  const results: Array<ScenarioResult> = []
  let homeSize: ReadonlyArray<HomeSizeResult> = []
  try {
    for (const [n, s] of selected.entries()) {
      const database = s.postgres === true && server !== undefined && "url" in server
        ? await createDatabase(server.url)
        : undefined
      const env = makeEnv(s.name, o.command, database)
      const paid = owe(() => {
        spawnSync("tmux", ["-S", env.socket, "kill-server"], { stdio: "ignore" })
        Fs.rmSync(env.dir, { recursive: true, force: true })
      })
      const label = `[${n + 1}/${selected.length}] ${s.name}`
      o.progress(`${label} ...`, true)
      try {
        const started = Date.now()
        const figuresOf = await s.run(env, (done) => o.progress(`${label} ${done}/${s.total}`, true))
        results.push({ name: s.name, design: s.design, description: s.description, ...figuresOf })
        o.progress(`${label}: ${figuresOf.ok} spawns, ${figuresOf.throughput}/s, p50 ${figuresOf.latency.p50} ms (${((Date.now() - started) / 1000).toFixed(1)} s)`, false)
      } finally {
        await cleanup(env)
        paid()
        if (database !== undefined && server !== undefined && "url" in server) {
          await adminQuery(server.url, `DROP DATABASE IF EXISTS ${database.name} WITH (FORCE)`)
        }
      }
    }
    if (homeSizeWanted) homeSize = await runHomeSize(o, server !== undefined && "url" in server ? server.url : undefined)
  } finally {
    if (server !== undefined && "stop" in server) await server.stop()
  }
  const floor = results.find((r) => r.name === "floor")
  if (floor !== undefined && floor.throughput > 0) {
    for (const r of results) r.floorRatio = Math.round((r.throughput / floor.throughput) * 100) / 100
  }
  const rounds = o.startupRounds ?? 0
  if (rounds === 0) return { results, homeSize, notes }
  o.progress(`start-up: ${rounds} rounds ...`, true)
  return { results, homeSize, notes, startup: await Effect.runPromise(measureStartup(rounds).pipe(Effect.provide(NodeServices.layer))) }
}
