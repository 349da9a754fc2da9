/**
 * The cost of supervision as a home grows: a reconcile pass and a status listing over a home holding only its
 * active tasks, then over the same home with many finished tasks added. A pass must cost what is alive, not what
 * ever lived: the target is a ratio within 1.5 between the two, measured in one run, in-process (no process start).
 */
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import pg from "pg"
import type { Services } from "../Spawnkit.js"
import { reconcile } from "../supervisor/Reconciler.js"
import { spawn } from "../spawn/Spawner.js"
import { createTask, listTasks } from "../tasks/Tasks.js"
import { type Summary, summarize } from "./Stats.js"

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

const time = async (passes: number, once: () => Promise<unknown>) => {
  const samples: Array<number> = []
  // A few passes first, unmeasured: they warm the caches and the JIT both homes are measured with.
  for (let i = 0; i < 3; i++) await once()
  for (let i = 0; i < passes; i++) {
    const t0 = performance.now()
    await once()
    samples.push(performance.now() - t0)
  }
  return summarize(samples)
}

/** A finished task as stored: its agents completed a day ago. */
const finishedTask = (home: string, index: number, agents: number) => {
  const taskId = `TASK-20250101-000000-${index.toString(16).padStart(8, "0")}`
  const at = new Date(Date.now() - 86_400_000).toISOString()
  const workspace = NodePath.join(home, taskId)
  const ids = Array.from({ length: agents }, (_, i) => `old-000000-${(index * agents + i).toString(16).padStart(8, "0")}`)
  return {
    task_id: taskId,
    task_description: "an earlier task",
    created_at: at,
    workspace,
    status: "COMPLETED",
    priority: "P2",
    agents: ids.map((id, i) => ({
      id,
      type: "old",
      tmux_session: `agent_${id}`,
      parent: "orchestrator",
      depth: 1,
      status: "completed",
      started_at: at,
      completed_at: at,
      last_update: at,
      progress: 100,
      prompt: `an earlier job, number ${index * agents + i}, with a prompt of realistic length for the registry`,
      prompt_sha256: (index * agents + i).toString(16).padStart(64, "0"),
      engine: "custom",
      exit: { exit_code: 0, last_lines: ["done"], at },
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

/**
 * Add finished tasks straight to the store, as an older home would hold them (registry files, or rows), without a
 * transaction each: this is the fixture, not what is measured.
 */
const addFinished = async (env: HomeEnv, o: HomeSizeOptions) => {
  if (env.database === undefined) {
    for (let t = 0; t < o.finishedTasks; t++) {
      const task = finishedTask(env.home, t, o.agentsPerTask)
      Fs.mkdirSync(NodePath.join(task.workspace, "logs"), { recursive: true })
      Fs.mkdirSync(NodePath.join(task.workspace, "prompts"))
      Fs.writeFileSync(NodePath.join(task.workspace, "AGENT_REGISTRY.json"), JSON.stringify(task, null, 2) + "\n")
    }
    return
  }
  const client = new pg.Client({ connectionString: env.database.url })
  await client.connect()
  try {
    const batch = 500
    for (let start = 0; start < o.finishedTasks; start += batch) {
      const rows = Array.from({ length: Math.min(batch, o.finishedTasks - start) }, (_, i) =>
        finishedTask(env.home, start + i, o.agentsPerTask))
      await client.query(
        `INSERT INTO spawnkit_tasks (task_id, doc, active_slots)
         SELECT t.id, t.doc::json, 0 FROM unnest($1::text[], $2::text[]) AS t(id, doc)`,
        [rows.map((r) => r.task_id), rows.map((r) => JSON.stringify(r))]
      )
    }
  } finally {
    await client.end()
  }
}

/**
 * Measure one backend: `activeTasks` tasks with a live agent each (real tmux sessions), then reconcile and status
 * timed; then the finished tasks added to the same home and both timed again.
 */
export const measureHomeSize = async (
  env: HomeEnv,
  backend: HomeSizeResult["backend"],
  o: HomeSizeOptions,
  progress: (text: string) => void
): Promise<HomeSizeResult> => {
  const runtime = ManagedRuntime.make(env.layer)
  try {
    await runtime.runPromise(
      Effect.forEach(Array.from({ length: o.activeTasks }, (_, i) => i), (i) =>
        Effect.gen(function*() {
          const task = yield* createTask({ description: `active ${i}`, max_concurrent: 2 })
          yield* spawn({ taskId: task.task_id, agentType: "live", prompt: `live ${i}` })
        }))
    )
    const passes = async () => ({
      reconcile: await time(o.passes, async () => {
        const report = await runtime.runPromise(reconcile())
        // The live agents are left as they are: a pass that repairs anything measures something else.
        if (report.repairs.length > 0 || report.partial) throw new Error(`unexpected repairs: ${JSON.stringify(report)}`)
      }),
      status: await time(o.passes, () => runtime.runPromise(listTasks({ scope: "active" })))
    })
    progress(`home-size (${backend}): ${o.activeTasks} active tasks ...`)
    const small = await passes()
    progress(`home-size (${backend}): adding ${o.finishedTasks} finished tasks ...`)
    await addFinished(env, o)
    progress(`home-size (${backend}): ${o.activeTasks} active and ${o.finishedTasks} finished tasks ...`)
    const large = await passes()
    return {
      backend,
      finishedTasks: o.finishedTasks,
      activeTasks: o.activeTasks,
      reconcile: { small: small.reconcile, large: large.reconcile },
      status: { small: small.status, large: large.status }
    }
  } finally {
    await runtime.dispose()
  }
}
