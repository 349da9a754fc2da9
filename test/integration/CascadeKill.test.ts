/**
 * A cascade kill covers the whole subtree as it is in the transaction that marks it, spawns in flight included: a
 * child whose spawn is between its reservation and its commit is cancelled, its commit fails (its parent is no longer
 * running) and it rolls back, leaving no record, session or file. On both registries; the child is held at its session
 * step by a gated tmux, so the kill always lands while its spawn is in flight.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Spawnkit from "../../src/index.js"
import {
  BACKENDS,
  cli,
  gatedTmux,
  liveSessions,
  promptFiles,
  runIn,
  stdoutJson,
  testEnvs,
  waitFor
} from "../support/Harness.js"

const newEnv = testEnvs()

describe.each(BACKENDS)("cascade kill on the %s registry", (backend) => {
  it("cancels a child whose spawn is in flight: the child never commits, the kill names it, nothing is left", async () => {
    const env = newEnv(undefined, backend)
    const gate = gatedTmux(env.home)
    const task = await runIn(env, Spawnkit.createTask({ description: "cascade", max_concurrent: 10 }))
    const parent = await runIn(env, Spawnkit.spawn({ taskId: task.task_id, agentType: "lead", prompt: "lead" }))

    // The child's spawn runs in this process through the gated tmux; it stops at its session step.
    const child = Effect.runFork(
      Spawnkit.spawn({ taskId: task.task_id, agentType: "child", prompt: "child", parent: parent.agent_id }).pipe(
        Effect.provide(env.layer({ tmuxBin: gate.bin }))
      )
    )
    await waitFor("the child's spawn reaches its session step", () => gate.arrivals() === 1)
    const reserved = env.readTask(task.task_id).agents.find((a: { parent: string }) => a.parent === parent.agent_id)
    expect(reserved).toMatchObject({ status: "reserved" })

    // The kill comes from another process.
    const killed = stdoutJson(
      cli(env, ["kill", "--task", task.task_id, "--agent", parent.agent_id, "--cascade", "--json"])
    )
    expect(killed).toMatchObject({ agent_id: parent.agent_id, status: "killed", killed: true, cascaded: [reserved.id] })

    gate.open()
    const exit = await Effect.runPromise(Fiber.await(child))
    expect(Exit.isFailure(exit)).toBe(true)
    expect(exit).toMatchObject({
      cause: { reasons: [{ error: { _tag: "ParentNotActive", parent: parent.agent_id, status: "killed" } }] }
    })

    const after = env.readTask(task.task_id)
    expect(after.agents.map((a: { id: string; status: string }) => [a.id, a.status])).toEqual([[
      parent.agent_id,
      "killed"
    ]])
    expect(after.active_count).toBe(0)
    expect(liveSessions(env.socket)).toEqual([])
    expect(promptFiles(env.home, task.task_id)).toEqual([])
  })

  it("a kill of an agent whose own spawn is in flight cancels that spawn", async () => {
    const env = newEnv(undefined, backend)
    const gate = gatedTmux(env.home)
    const task = await runIn(env, Spawnkit.createTask({ description: "cancel", max_concurrent: 10 }))
    const spawning = Effect.runFork(
      Spawnkit.spawn({ taskId: task.task_id, agentType: "slow", prompt: "slow" }).pipe(
        Effect.provide(env.layer({ tmuxBin: gate.bin }))
      )
    )
    await waitFor("the spawn reaches its session step", () => gate.arrivals() === 1)
    const reserved = env.readTask(task.task_id).agents[0]
    const killed = await runIn(env, Spawnkit.kill(task.task_id, reserved.id, "changed my mind"))
    expect(killed).toEqual({
      agent_id: reserved.id,
      task_id: task.task_id,
      status: "cancelled",
      killed: true,
      cascaded: []
    })
    gate.open()
    const exit = await Effect.runPromise(Fiber.await(spawning))
    expect(exit).toMatchObject({
      cause: { reasons: [{ error: { _tag: "SpawnCancelled", reason: "changed my mind" } }] }
    })
    expect(env.readTask(task.task_id).agents).toEqual([])
    expect(liveSessions(env.socket)).toEqual([])
    expect(promptFiles(env.home, task.task_id)).toEqual([])
  })
})
