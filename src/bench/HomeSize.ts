/**
 * The cost of supervision as a home grows: a reconcile pass and a status listing over a home holding only its
 * active tasks, then over the same home with many finished tasks added. A pass must cost what is alive, not what
 * ever lived: the target is a ratio within 1.5 between the two, measured in one run, in-process (no process start).
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Layer from "effect/Layer"
import * as Path from "effect/Path"
import { spawn } from "../spawn/Spawner.js"
import { type Services } from "../Spawnkit.js"
import { reconcile } from "../supervisor/Reconciler.js"
import { createTask, listTasks } from "../tasks/Tasks.js"
import { finishedAgent } from "./Fixtures.js"
import { pgClient } from "./Postgres.js"
import { BenchFailed, benchFailed } from "./Scenario.js"
import { summarize, type Summary } from "./Stats.js"

/** What the home-size measurement needs from the harness (one scenario's home, socket and database). */
export interface HomeEnv {
  readonly home: string
  readonly database?: { readonly url: string }
  /** spawnkit's services on that home: built once, so a pass measures the pass, not the layer's start. */
  readonly layer: Layer.Layer<Services, unknown>
}

/** Options of the measurement. */
export interface HomeSizeOptions {
  readonly finishedTasks: number
  readonly activeTasks: number
  /** Finished agents per finished task. */
  readonly agentsPerTask: number
  /** Passes measured per home and operation. */
  readonly passes: number
}

/** Figures of one registry backend. */
export interface HomeSizeResult {
  readonly backend: "file" | "postgresql"
  readonly finishedTasks: number
  readonly activeTasks: number
  /** One reconcile pass, ms: over the active tasks alone, and with the finished tasks too. */
  readonly reconcile: { readonly small: Summary; readonly large: Summary }
  /** One `status` listing (tasks with agents running or starting), ms. */
  readonly status: { readonly small: Summary; readonly large: Summary }
}

/** Warm-up passes run first, unmeasured: they warm the caches and the JIT both homes are measured with. */
const WARM_UP = 3
const DAY_MS = 86_400_000
/** Rows per INSERT when finished tasks are added to a PostgreSQL home. */
const INSERT_BATCH = 500

const time = <E, R>(passes: number, once: Effect.Effect<unknown, E, R>) =>
  Effect.gen(function*() {
    yield* Effect.repeat(once, { times: WARM_UP - 1 })
    const samples: Array<number> = []
    for (let i = 0; i < passes; i++) {
      const t0 = yield* Clock.currentTimeNanos
      yield* once
      samples.push(Number((yield* Clock.currentTimeNanos) - t0) / 1e6)
    }
    return summarize(samples)
  })

/** A finished task as stored: its agents completed a day ago. */
const finishedTask = (home: string, index: number, agents: number, nowMs: number) => {
  const taskId = `TASK-20250101-000000-${index.toString(16).padStart(8, "0")}`
  const at = new Date(nowMs - DAY_MS).toISOString()
  const workspace = `${home}/${taskId}`
  const ids = Array.from(
    { length: agents },
    (_, i) => `old-000000-${(index * agents + i).toString(16).padStart(8, "0")}`
  )
  return {
    task_id: taskId,
    task_description: "an earlier task",
    created_at: at,
    workspace,
    status: "COMPLETED",
    priority: "P2",
    agents: ids.map((id, i) => ({
      ...finishedAgent(index * agents + i, at),
      tracked_files: { prompt_file: `${workspace}/prompts/${id}.prompt`, log_file: `${workspace}/logs/${id}.log` }
    })),
    agent_hierarchy: { orchestrator: ids },
    max_agents: 45,
    max_depth: 5,
    max_concurrent: 20,
    total_spawned: agents,
    active_count: 0,
    completed_count: agents
  }
}

/** Add the finished tasks as registry files. */
const addFinishedFiles = (env: HomeEnv, o: HomeSizeOptions, nowMs: number) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    for (let t = 0; t < o.finishedTasks; t++) {
      const task = finishedTask(env.home, t, o.agentsPerTask, nowMs)
      yield* fs.makeDirectory(path.join(task.workspace, "logs"), { recursive: true })
      yield* fs.makeDirectory(path.join(task.workspace, "prompts"))
      yield* fs.writeFileString(path.join(task.workspace, "AGENT_REGISTRY.json"), JSON.stringify(task, null, 2) + "\n")
    }
  }).pipe(Effect.mapError(benchFailed("writing finished tasks")))

/** Add the finished tasks as rows, a batch per statement, on a connection closed with the scope. */
const addFinishedRows = (url: string, env: HomeEnv, o: HomeSizeOptions, nowMs: number) =>
  Effect.gen(function*() {
    const client = yield* pgClient(url, "the home-size database")
    for (let start = 0; start < o.finishedTasks; start += INSERT_BATCH) {
      const rows = Array.from({ length: Math.min(INSERT_BATCH, o.finishedTasks - start) }, (_, i) =>
        finishedTask(env.home, start + i, o.agentsPerTask, nowMs))
      yield* Effect.tryPromise({
        try: () =>
          client.query(
            `INSERT INTO spawnkit_tasks (task_id, doc, active_slots)
             SELECT t.id, t.doc::json, 0 FROM unnest($1::text[], $2::text[]) AS t(id, doc)`,
            [
              rows.map((r) =>
                r.task_id
              ),
              rows.map((r) => JSON.stringify(r))
            ]
          ),
        catch: benchFailed("inserting finished tasks")
      })
    }
  }).pipe(Effect.scoped)

/**
 * Add finished tasks straight to the store, as an older home would hold them (registry files, or rows), without a
 * transaction each: this is the fixture, not what is measured.
 */
const addFinished = (env: HomeEnv, o: HomeSizeOptions) =>
  Effect.flatMap(
    Clock.currentTimeMillis,
    (nowMs) =>
      env.database === undefined ? addFinishedFiles(env, o, nowMs) : addFinishedRows(env.database.url, env, o, nowMs)
  )

/** One reconcile pass that must find nothing to repair: the live agents are left as they are. */
const quietReconcile = Effect.flatMap(reconcile(), (report) =>
  report.repairs.length > 0 || report.partial
    ? Effect.fail(new BenchFailed({ reason: `home-size: unexpected repairs: ${JSON.stringify(report)}` }))
    : Effect.void)

/** `activeTasks` tasks with one live agent each (real tmux sessions). */
const startActive = (activeTasks: number) =>
  Effect.forEach(Array.from({ length: activeTasks }, (_, i) => i), (i) =>
    Effect.gen(function*() {
      const task = yield* createTask({ description: `active ${i}`, max_concurrent: 2 })
      yield* spawn({ taskId: task.task_id, agentType: "live", prompt: `live ${i}` })
    }), { discard: true })

/**
 * Measure one backend: `activeTasks` tasks with a live agent each, then reconcile and status timed; then the
 * finished tasks added to the same home and both timed again. spawnkit's services are built once, in the caller's
 * scope.
 */
export const measureHomeSize = Effect.fn("Bench.measureHomeSize")(function*(
  env: HomeEnv,
  backend: HomeSizeResult["backend"],
  o: HomeSizeOptions,
  progress: (text: string) => void
) {
  const services = yield* Layer.build(env.layer).pipe(Effect.mapError(benchFailed("starting spawnkit")))
  const inHome = <A, E>(effect: Effect.Effect<A, E, Services>) =>
    Effect.provide(effect, services).pipe(
      Effect.mapError((e) => e instanceof BenchFailed ? e : benchFailed(`home-size (${backend})`)(e))
    )
  yield* inHome(startActive(o.activeTasks))
  const passes = inHome(Effect.all({
    reconcile: time(o.passes, quietReconcile),
    status: time(o.passes, listTasks({ scope: "active" }))
  }))
  progress(`home-size (${backend}): ${o.activeTasks} active tasks ...`)
  const small = yield* passes
  progress(`home-size (${backend}): adding ${o.finishedTasks} finished tasks ...`)
  yield* addFinished(env, o)
  progress(`home-size (${backend}): ${o.activeTasks} active and ${o.finishedTasks} finished tasks ...`)
  const large = yield* passes
  return {
    backend,
    finishedTasks: o.finishedTasks,
    activeTasks: o.activeTasks,
    reconcile: { small: small.reconcile, large: large.reconcile },
    status: { small: small.status, large: large.status }
  } satisfies HomeSizeResult
})
