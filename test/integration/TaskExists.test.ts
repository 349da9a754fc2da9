/**
 * Creating a task whose id exists is TaskExists on both registries, and the stored task is left exactly as it was.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Spawnkit from "../../src/index.js"
import { BACKENDS, runIn, testEnvs } from "../support/Harness.js"

const newEnv = testEnvs()

describe.each(BACKENDS)("a task id that exists (%s registry)", (backend) => {
  it("is refused with TaskExists and the stored task is unchanged", async () => {
    const env = newEnv(undefined, backend)
    const outcome = await runIn(
      env,
      Effect.gen(function*() {
        const task = yield* Spawnkit.createTask({ description: "the first" })
        const registry = yield* Spawnkit.Registry
        const stored = yield* registry.read(task.task_id)
        const again = yield* Effect.flip(registry.createTask({ ...stored, task_description: "the second" }))
        return { stored, again, after: yield* registry.read(task.task_id) }
      })
    )
    expect(outcome.again).toBeInstanceOf(Spawnkit.TaskExists)
    expect(outcome.again).toMatchObject({ _tag: "TaskExists", taskId: outcome.stored.task_id })
    expect(outcome.again.message).toContain("already exists")
    expect(outcome.after).toEqual(outcome.stored)
  })
})
