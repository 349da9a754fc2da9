/**
 * The file registry's two shortcuts must never change an answer:
 * - the decoded-registry cache is keyed by file contents, so a registry changed behind its back is read afresh;
 * - the active-task markers are a superset of the tasks holding slots (rebuilt for a home that has none), so the
 *   global limit still counts every slot while finished tasks are no longer read.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import * as Spawnkit from "../../src/index.js"
import { readRegistryFile, runIn, testEnvs } from "../support/Harness.js"

const newEnv = testEnvs()
const markersOf = (home: string) => Fs.readdirSync(NodePath.join(home, ".spawnkit-active")).sort()
const registryFile = (home: string, taskId: string) => NodePath.join(home, taskId, "AGENT_REGISTRY.json")

describe("FileRegistry markers and cache", () => {
  it("marks a task while it holds slots and unmarks it when its last agent ends", async () => {
    const env = newEnv()
    const { task, agent } = await runIn(
      env,
      Effect.gen(function*() {
        const task = yield* Spawnkit.createTask({ description: "t" })
        const agent = yield* Spawnkit.spawn({ taskId: task.task_id, agentType: "w", prompt: "p" })
        return { task, agent }
      })
    )
    expect(markersOf(env.home)).toEqual([task.task_id])
    await runIn(env, Spawnkit.kill(task.task_id, agent.agent_id))
    expect(markersOf(env.home)).toEqual([])
    expect(readRegistryFile(env.home, task.task_id).active_count).toBe(0)
  })

  it("counts every marked task against the global limit, and no finished one", async () => {
    const env = newEnv()
    const outcome = await runIn(
      env,
      Effect.gen(function*() {
        const a = yield* Spawnkit.createTask({ description: "a" })
        const b = yield* Spawnkit.createTask({ description: "b" })
        const c = yield* Spawnkit.createTask({ description: "c" })
        const first = yield* Spawnkit.spawn({ taskId: a.task_id, agentType: "w", prompt: "1" })
        yield* Spawnkit.spawn({ taskId: b.task_id, agentType: "w", prompt: "2" })
        // Global limit 2 is reached: a third task is refused.
        const refused = yield* Spawnkit.spawn({ taskId: c.task_id, agentType: "w", prompt: "3" }).pipe(Effect.flip)
        // Ending an agent of a frees a slot globally.
        yield* Spawnkit.kill(a.task_id, first.agent_id)
        const admitted = yield* Spawnkit.spawn({ taskId: c.task_id, agentType: "w", prompt: "3" })
        return { refused, admitted, ids: [a.task_id, b.task_id, c.task_id] }
      }).pipe(Effect.provide(env.layer({ globalMaxConcurrent: 2 })))
    )
    expect(outcome.refused).toMatchObject({ _tag: "LimitReached", limit: "global_max_concurrent" })
    expect(outcome.admitted.status).toBe("running")
    expect(markersOf(env.home)).toEqual([outcome.ids[1], outcome.ids[2]].sort())
  })

  it("rebuilds the markers of a home that has none, so slots held before are still counted", async () => {
    const env = newEnv()
    const taskId = await runIn(
      env,
      Effect.gen(function*() {
        const task = yield* Spawnkit.createTask({ description: "old" })
        yield* Spawnkit.spawn({ taskId: task.task_id, agentType: "w", prompt: "held" })
        return task.task_id
      })
    )
    // A home written before the markers existed.
    Fs.rmSync(NodePath.join(env.home, ".spawnkit-active"), { recursive: true })
    const refused = await runIn(
      env,
      Effect.gen(function*() {
        const other = yield* Spawnkit.createTask({ description: "new" })
        return yield* Spawnkit.spawn({ taskId: other.task_id, agentType: "w", prompt: "more" }).pipe(Effect.flip)
      }).pipe(Effect.provide(env.layer({ globalMaxConcurrent: 1 })))
    )
    expect(refused).toMatchObject({ _tag: "LimitReached", limit: "global_max_concurrent" })
    expect(markersOf(env.home)).toEqual([taskId])
  })

  it("reads a registry changed by another writer afresh instead of answering from its cache", async () => {
    const env = newEnv()
    await runIn(
      env,
      Effect.gen(function*() {
        const registry = yield* Spawnkit.Registry
        const task = yield* Spawnkit.createTask({ description: "cached" })
        const id = task.task_id as Spawnkit.TaskId
        // A task holding a slot: the kind the cache keeps.
        yield* Spawnkit.spawn({ taskId: id, agentType: "w", prompt: "p" })
        const before = yield* registry.read(id)
        expect(before.task_description).toBe("cached")
        // Same length, different bytes: only the contents tell the two apart.
        const file = registryFile(env.home, task.task_id)
        Fs.writeFileSync(file, Fs.readFileSync(file, "utf8").replace("\"cached\"", "\"edited\""))
        const after = yield* registry.read(id)
        expect(after.task_description).toBe("edited")
        const seen = yield* registry.update(id, (tx) => Effect.succeed({ result: tx.task.task_description }))
        expect(seen).toBe("edited")
      })
    )
  })

  it("never answers from the cache for a registry that became undecodable, and leaves it untouched", async () => {
    const env = newEnv()
    const { error, taskId } = await runIn(
      env,
      Effect.gen(function*() {
        const registry = yield* Spawnkit.Registry
        const task = yield* Spawnkit.createTask({ description: "t" })
        yield* Spawnkit.spawn({ taskId: task.task_id, agentType: "w", prompt: "cached" })
        yield* registry.read(task.task_id as Spawnkit.TaskId)
        Fs.writeFileSync(registryFile(env.home, task.task_id), "{\"task_id\": 42}")
        const error = yield* Spawnkit.spawn({ taskId: task.task_id, agentType: "w", prompt: "p" }).pipe(Effect.flip)
        return { error, taskId: task.task_id }
      })
    )
    expect(error._tag).toBe("RegistryCorrupt")
    expect(Fs.readFileSync(registryFile(env.home, taskId), "utf8")).toBe("{\"task_id\": 42}")
  })
})
