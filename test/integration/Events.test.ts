import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import * as Spawnkit from "../../src/index.js"
import { journalPath } from "../../src/registry/FileJournal.js"
import { BACKENDS, readRegistryFile, runIn, testEnvs, waitFor } from "../support/Harness.js"

const newEnv = testEnvs()

const allEvents = (taskId?: string, since?: number) =>
  Stream.runCollect(
    Spawnkit.events({
      ...(taskId !== undefined ? { taskId: taskId as Spawnkit.TaskId } : {}),
      ...(since !== undefined ? { since } : {})
    })
  )

describe.each(BACKENDS)("event journal (%s registry)", (backend) => {
  it("journals spawns, reports and ends with gap-free sequence numbers, in each agent's order", async () => {
    const env = newEnv(undefined, backend)
    const out = await runIn(
      env,
      Effect.gen(function*() {
        const task = yield* Spawnkit.createTask({ description: "t" })
        const a = yield* Spawnkit.spawn({ taskId: task.task_id, agentType: "worker", prompt: "a" })
        const b = yield* Spawnkit.spawn({ taskId: task.task_id, agentType: "worker", prompt: "b" })
        yield* Spawnkit.updateProgress(task.task_id, a.agent_id, { status: "working", message: "half", progress: 50 })
        yield* Spawnkit.reportFinding(task.task_id, b.agent_id, {
          finding_type: "issue",
          severity: "low",
          message: "found"
        })
        yield* Spawnkit.kill(task.task_id, a.agent_id)
        yield* Spawnkit.kill(task.task_id, b.agent_id)
        // A second kill changes nothing, so it journals nothing.
        yield* Spawnkit.kill(task.task_id, b.agent_id)
        const events = yield* allEvents()
        const head = yield* Effect.flatMap(Spawnkit.Events, (e) => e.head)
        const later = yield* allEvents(undefined, 3)
        return { task, a, b, events, head, later }
      })
    )
    expect(out.events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6])
    expect(out.head).toBe(6)
    expect(out.events.map((e) => [e.agent_id, e.kind])).toEqual([
      [out.a.agent_id, "spawned"],
      [out.b.agent_id, "spawned"],
      [out.a.agent_id, "progress"],
      [out.b.agent_id, "finding"],
      [out.a.agent_id, "killed"],
      [out.b.agent_id, "killed"]
    ])
    expect(out.events[2]).toMatchObject({ progress: 50, message: "half", status: "working" })
    expect(out.later.map((e) => e.seq)).toEqual([4, 5, 6])
    expect(out.events.every((e) => e.task_id === out.task.task_id)).toBe(true)
  })

  it("waitFor returns each agent's final state when all have ended, and times out without an error", async () => {
    const env = newEnv(`sh -c "echo done; exit 3"`, backend)
    const out = await runIn(
      env,
      Effect.gen(function*() {
        const task = yield* Spawnkit.createTask({ description: "t" })
        const ids = []
        for (let i = 0; i < 3; i++) {
          ids.push((yield* Spawnkit.spawn({ taskId: task.task_id, agentType: "worker", prompt: `p${i}` })).agent_id)
        }
        const all = yield* Spawnkit.waitFor({ taskId: task.task_id, agentIds: ids, timeoutSeconds: 120 })
        return { task, ids, all }
      })
    )
    expect(out.all).toMatchObject({ satisfied: true, timed_out: false, mode: "all" })
    expect(out.all.agents.map((a) => a.agent_id)).toEqual(out.ids)
    for (const agent of out.all.agents) {
      expect(agent).toMatchObject({ status: "failed", exit_code: 3, ended: true })
      expect(agent.last_lines).toContain("done")
    }
  })
})

describe("waiting while the supervisor that should record the exits is dead", () => {
  it("the waiter records the exits left to a supervisor killed before it recorded them", async () => {
    const env = newEnv(`sh -c "echo done; exit 0"`, "file")
    // A supervisor's marker of a live process: the agents' runners tell the pane-died hook to do nothing.
    const stand = spawn("sleep", ["600"], { stdio: "ignore" })
    const exits = NodePath.join(env.home, ".spawnkit-exits")
    Fs.mkdirSync(exits, { recursive: true })
    Fs.writeFileSync(NodePath.join(exits, `.supervisor.dead0000.${stand.pid}`), "")
    try {
      const spawned = await runIn(
        env,
        Effect.gen(function*() {
          const task = yield* Spawnkit.createTask({ description: "t" })
          const ids = []
          for (let i = 0; i < 2; i++) {
            ids.push((yield* Spawnkit.spawn({ taskId: task.task_id, agentType: "worker", prompt: `p${i}` })).agent_id)
          }
          return { taskId: task.task_id, ids }
        })
      )
      // Both ran to their end and nobody recorded it: the exit files wait for a supervisor.
      await waitFor(
        "both exit files written",
        () => spawned.ids.every((id) => Fs.existsSync(NodePath.join(exits, `${spawned.taskId}.${id}`)))
      )
      expect(readRegistryFile(env.home, spawned.taskId).active_count).toBe(2)
      // The supervisor dies without recording them.
      stand.kill("SIGKILL")
      await new Promise((resolve) => stand.once("exit", resolve))
      const waited = await runIn(
        env,
        Spawnkit.waitFor({ taskId: spawned.taskId, agentIds: spawned.ids, timeoutSeconds: 120 })
      )
      expect(waited).toMatchObject({ satisfied: true, timed_out: false })
      expect(waited.agents.map((a) => [a.agent_id, a.status, a.exit_code])).toEqual(
        spawned.ids.map((id) => [id, "completed", 0])
      )
      expect(Fs.readdirSync(exits).filter((n) => !n.startsWith("."))).toEqual([])
    } finally {
      stand.kill("SIGKILL")
    }
  })
})

describe("event journal on files", () => {
  it("cuts off a batch whose registry write never happened, and readers never see it", async () => {
    const env = newEnv(undefined, "file")
    const out = await runIn(
      env,
      Effect.gen(function*() {
        const task = yield* Spawnkit.createTask({ description: "t" })
        yield* Spawnkit.spawn({ taskId: task.task_id, agentType: "worker", prompt: "a" })
        // A writer that died after its batch and before its registry write leaves an unmarked batch at the end.
        const forged = {
          tx: 2,
          events: [{
            seq: 2,
            at: new Date().toISOString(),
            task_id: task.task_id,
            agent_id: "ghost",
            kind: "spawned",
            status: "running"
          }]
        }
        Fs.appendFileSync(journalPath(env.home), JSON.stringify(forged) + "\n")
        const seen = yield* allEvents()
        const b = yield* Spawnkit.spawn({ taskId: task.task_id, agentType: "worker", prompt: "b" })
        const after = yield* allEvents()
        return { seen, after, b }
      })
    )
    expect(out.seen.map((e) => e.seq)).toEqual([1])
    expect(out.after.map((e) => [e.seq, e.agent_id])).toEqual([[1, out.after[0]!.agent_id], [2, out.b.agent_id]])
  })
})
