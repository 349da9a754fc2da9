/**
 * The spawn queue end to end: real spawner processes (the built API), real tmux, agents that run for a random
 * 1–2 s, on both registries. What is checked comes from the event journal and the registry, not from timing.
 * Needs `npm run build` first.
 */
import { afterEach, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type { ChildProcess } from "node:child_process"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import * as Spawnkit from "../../src/index.js"
import { BACKENDS, makeTempDir, runIn, runNode, type TestEnv, testEnvs, waitFor } from "../support/Harness.js"

const newEnv = testEnvs()
const WORKER = NodePath.resolve(import.meta.dirname, "..", "support", "queue-worker.mjs")
const children: Array<ChildProcess> = []
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL")
})

/**
 * An agent script that works for a random 4–6 s (seeded by its pid) and exits 0. (Not from 0.5 s, 1 s nor 2 s: on a
 * loaded 2-core machine, with the PostgreSQL race stress running beside it, a spawn's commit once came more than two
 * seconds after its session started, and an agent that has already exited by then fails its spawn with
 * AgentExitedAtStartup, as it should.)
 */
const randomWorker = () => {
  const dir = makeTempDir("spawnkit-queue-agent-")
  const file = NodePath.join(dir, "agent.sh")
  Fs.writeFileSync(file, `sleep $(awk -v s=$$ 'BEGIN { srand(s); print 4 + rand() * 2 }')\n`)
  return `sh ${file}`
}

const startWorker = (env: TestEnv, taskId: string, count: number, tag: string, timeout = 600) => {
  const run = runNode(env, [WORKER, taskId, String(count), tag, String(timeout)])
  children.push(run.child)
  return {
    child: run.child,
    done: run.done.then((out) => JSON.parse(out) as { agents: Array<string>; failures: Array<string> })
  }
}

const journal = (env: TestEnv) => runIn(env, Stream.runCollect(Spawnkit.events()))

describe.each(BACKENDS)("spawn queue (%s registry)", (backend) => {
  it("40 queued spawns from 4 processes into 5 slots: never more than 5 running, all run, first come first served", async () => {
    const env = newEnv(randomWorker(), backend)
    const task = await runIn(env, Spawnkit.createTask({ description: "queue", max_concurrent: 5, max_agents: 45 }))
    const workers = ["p0", "p1", "p2", "p3"].map((tag) => startWorker(env, task.task_id, 10, tag))
    const results = await Promise.all(workers.map((w) => w.done))
    expect(results.flatMap((r) => r.failures)).toEqual([])
    expect(results.flatMap((r) => r.agents)).toHaveLength(40)
    await waitFor("every agent ended", () => env.readTask(task.task_id).active_count === 0, 120_000)
    const events = await journal(env)
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1))
    // Replayed in sequence order, the agents spawned and not yet ended never exceed the limit.
    let running = 0
    let most = 0
    for (const e of events) {
      if (e.kind === "spawned") most = Math.max(most, ++running)
      if (e.kind === "exited") running--
    }
    expect(most).toBeLessThanOrEqual(5)
    expect(events.filter((e) => e.kind === "spawned")).toHaveLength(40)
    expect(events.filter((e) => e.kind === "exited" && e.status === "completed")).toHaveLength(40)
    // Those that waited left the line in the order they joined it, all of them admitted.
    const queued = events.filter((e) => e.kind === "queued").map((e) => e.agent_id)
    const dequeued = events.filter((e) => e.kind === "dequeued")
    expect(queued.length).toBeGreaterThanOrEqual(30)
    expect(dequeued.map((e) => e.agent_id)).toEqual(queued)
    expect(dequeued.every((e) => e.status === "reserved")).toBe(true)
    expect(env.readTask(task.task_id).queue ?? []).toEqual([])
  })

  it("a waiter that is interrupted and one that is SIGKILLed leave no entry behind", async () => {
    const env = newEnv("sleep 600", backend)
    const task = await runIn(env, Spawnkit.createTask({ description: "queue", max_concurrent: 1 }))
    const holder = await runIn(
      env,
      Spawnkit.spawn({ taskId: task.task_id, agentType: "w", prompt: "hold", engine: "custom" })
    )
    const term = startWorker(env, task.task_id, 1, "term")
    const kill = startWorker(env, task.task_id, 1, "kill")
    await waitFor("both wait in line", () => (env.readTask(task.task_id).queue ?? []).length === 2, 60_000)
    term.child.kill("SIGTERM")
    kill.child.kill("SIGKILL")
    await Promise.allSettled([term.done, kill.done])
    // The interrupted one left the line itself; the killed one goes at the next change of the task (or reconcile).
    await waitFor("the interrupted waiter left", () => (env.readTask(task.task_id).queue ?? []).length <= 1, 30_000)
    await runIn(env, Spawnkit.reconcile())
    expect(env.readTask(task.task_id).queue ?? []).toEqual([])
    const events = await journal(env)
    expect(events.filter((e) => e.kind === "dequeued").map((e) => e.status)).toEqual([undefined, undefined])
    // The line is free: with the holder killed, a new queued spawn is admitted at once.
    await runIn(env, Spawnkit.kill(task.task_id, holder.agent_id))
    const next = await runIn(
      env,
      Spawnkit.spawn({ taskId: task.task_id, agentType: "w", prompt: "next", engine: "custom", queue: true })
    )
    expect(next.status).toBe("running")
  })

  it("every other check answers at once; a queue timeout is a typed error and leaves no entry", async () => {
    const env = newEnv("sleep 600", backend)
    const task = await runIn(env, Spawnkit.createTask({ description: "queue", max_concurrent: 1, max_agents: 2 }))
    await runIn(env, Spawnkit.spawn({ taskId: task.task_id, agentType: "w", prompt: "hold", engine: "custom" }))
    const timedOut = await runIn(
      env,
      Effect.flip(
        Spawnkit.spawn({
          taskId: task.task_id,
          agentType: "w",
          prompt: "late",
          engine: "custom",
          queue: true,
          queueTimeoutSeconds: 1
        })
      )
    )
    expect(timedOut._tag).toBe("QueueTimedOut")
    expect(env.readTask(task.task_id).queue ?? []).toEqual([])
    const duplicate = await runIn(
      env,
      Effect.flip(
        Spawnkit.spawn({ taskId: task.task_id, agentType: "w", prompt: "hold", engine: "custom", queue: true })
      )
    )
    expect(duplicate._tag).toBe("DuplicateAgent")
    const deep = await runIn(
      env,
      Effect.flip(
        Spawnkit.spawn({
          taskId: task.task_id,
          agentType: "w",
          prompt: "x",
          parent: "nobody",
          engine: "custom",
          queue: true
        })
      )
    )
    expect(deep._tag).toBe("ParentNotFound")
    expect(env.readTask(task.task_id).queue ?? []).toEqual([])
  })
})
