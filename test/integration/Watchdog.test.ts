/**
 * The watchdog reads "now" from Effect's Clock service, end to end: a real agent (a process in a real tmux session,
 * its record in a real registry) with a one-hour limit is left running by a reconcile pass whose clock stands exactly
 * at its deadline, and is stopped and recorded `timed_out` by a pass one millisecond later, while the wall clock is
 * still far from the deadline. The pass's clock is fixed for its reads of the time; its sleeps are the real clock's.
 * On both registries.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Spawnkit from "../../src/index.js"
import { BACKENDS, liveSessions, runIn, type TestEnv, testEnvs } from "../support/Harness.js"

const newEnv = testEnvs()
const HOUR_MS = 3_600_000

/** A clock standing at `ms` whose sleeps (and monotonic time) are the real clock's. */
const standingAt = (real: Clock.Clock, ms: number): Clock.Clock => ({
  currentTimeMillisUnsafe: () => ms,
  currentTimeMillis: Effect.sync(() => ms),
  currentTimeNanosUnsafe: () => BigInt(ms) * 1_000_000n,
  currentTimeNanos: Effect.sync(() => BigInt(ms) * 1_000_000n),
  monotonicTimeNanosUnsafe: () => real.monotonicTimeNanosUnsafe(),
  monotonicTimeNanos: real.monotonicTimeNanos,
  sleep: (duration) => real.sleep(duration)
})

/** One reconcile pass whose clock stands at `ms`. */
const passAt = (env: TestEnv, ms: number) =>
  runIn(
    env,
    Effect.gen(function*() {
      const real = yield* Clock.Clock
      return yield* Spawnkit.reconcile().pipe(Effect.provideService(Clock.Clock, standingAt(real, ms)))
    })
  )

for (const backend of BACKENDS) {
  describe(`the watchdog on the pass's clock (${backend} registry)`, () => {
    it("stops an agent exactly when its deadline has passed on the injected clock, not before", async () => {
      const env = newEnv(undefined, backend)
      const { agent, task } = await runIn(
        env,
        Effect.gen(function*() {
          const task = yield* Spawnkit.createTask({ description: "watchdog" })
          const agent = yield* Spawnkit.spawn({
            taskId: task.task_id,
            agentType: "limited",
            prompt: "p",
            timeoutSeconds: 3600
          })
          return { agent, task }
        })
      )
      const recordOf = () => env.readTask(task.task_id).agents.find((a: { id: string }) => a.id === agent.agent_id)
      const startedMs = Date.parse(recordOf().started_at)
      // The wall clock is nowhere near the deadline: only the pass's clock can make it due.
      expect(Date.now() - startedMs).toBeLessThan(HOUR_MS / 2)

      const atDeadline = await passAt(env, startedMs + HOUR_MS)
      expect(atDeadline.repairs).toEqual([])
      expect(recordOf().status).toBe("running")
      expect(liveSessions(env.socket)).toEqual([agent.tmux_session])

      const past = await passAt(env, startedMs + HOUR_MS + 1)
      expect(past.repairs).toMatchObject([{ kind: "timed_out", agent_id: agent.agent_id }])
      expect(recordOf()).toMatchObject({ status: "timed_out", reason: expect.stringContaining("limit of 3600 s") })
      expect(liveSessions(env.socket)).toEqual([])
      // Ended once: a later pass has nothing left to do.
      expect((await passAt(env, startedMs + 2 * HOUR_MS)).repairs).toEqual([])
    })
  })
}
