/**
 * The watchdog on a test clock. A reconcile pass reads "now" from Effect's Clock service (its observation's `nowMs`)
 * and a spawn stamps `started_at` from it too, so here both come from the TestClock and `TestClock.adjust` moves
 * time: an agent is planned to be stopped (`timed_out` or `stalled`) exactly when its limit has passed, never before,
 * with no real waiting.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { TestClock } from "effect/testing"
import { Agent } from "../../../src/domain/Agent.js"
import { AgentId, TaskId } from "../../../src/domain/Ids.js"
import { TaskRegistry } from "../../../src/domain/Task.js"
import { isoOf } from "../../../src/spawn/AgentRecords.js"
import { type Observation, plan, type Planned } from "../../../src/supervisor/ReconcilePlan.js"
import { overdue } from "../../../src/supervisor/Watchdog.js"

const START = Date.UTC(2026, 11, 2, 12, 0, 0)
const HOME = "/srv/spawnkit-home"
const T = Schema.decodeUnknownSync(TaskId)("TASK-20261202-120000-cccccccc")
const A1 = Schema.decodeUnknownSync(AgentId)("worker-120000-0000a001")

/** A running agent as a spawn records it now (by the Clock), with the given limits. */
const runningAgent = (limits: { readonly timeout_seconds?: number; readonly stall_timeout_seconds?: number }) =>
  Effect.map(Clock.currentTimeMillis, (nowMs) =>
    Schema.decodeUnknownSync(Agent)({
      id: A1,
      type: "worker",
      tmux_session: `agent_${A1}`,
      parent: "orchestrator",
      depth: 1,
      status: "running",
      started_at: isoOf(nowMs),
      ...limits
    }, { onExcessProperty: "error" }))

const taskOf = (agent: Agent): TaskRegistry =>
  Schema.decodeUnknownSync(TaskRegistry)({
    task_id: T,
    task_description: "watchdog",
    created_at: isoOf(START - 60_000),
    workspace: `${HOME}/${T}`,
    status: "INITIALIZED",
    agents: [agent],
    agent_hierarchy: {},
    max_agents: 45,
    max_depth: 5,
    max_concurrent: 20,
    total_spawned: 1,
    active_count: 1
  })

/** One pass's plan for the agent (its session alive), with "now" read from the Clock as the reconciler reads it. */
const planNow = (agent: Agent, lastOutputMs?: number) =>
  Effect.map(Clock.currentTimeMillis, (nowMs): ReadonlyArray<Planned> =>
    plan(
      {
        home: HOME,
        hostId: "host-a",
        nowMs,
        spawnDeadlineMs: 120_000,
        pid: 1001,
        sessions: [{
          name: `agent_${A1}`,
          tags: { spawnkit_home: HOME, spawnkit_task: T, spawnkit_agent: A1 },
          pane: { paneId: "%1", panePid: 4242, dead: false, exitCode: undefined }
        }],
        tasks: [taskOf(agent)],
        unreadable: [],
        expiredHosts: new Set(),
        agentFiles: [],
        tempFiles: [],
        alive: () => true,
        inFlight: () => false,
        lastOutputMs: () => lastOutputMs
      } satisfies Observation
    ))

describe("the watchdog on a test clock", () => {
  it.effect("an agent past its wall-clock limit is stopped exactly when the limit has passed, not a millisecond before", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(START)
      const agent = yield* runningAgent({ timeout_seconds: 60 })
      expect(agent.started_at).toBe(isoOf(START))
      expect(yield* planNow(agent)).toEqual([])
      yield* TestClock.adjust("59 seconds")
      expect(yield* planNow(agent)).toEqual([])
      // At the limit itself the agent has run exactly 60 s: not longer than its limit yet.
      yield* TestClock.adjust("1 second")
      expect(yield* Clock.currentTimeMillis).toBe(START + 60_000)
      expect(yield* planNow(agent)).toEqual([])
      yield* TestClock.adjust("1 millis")
      expect(yield* planNow(agent)).toEqual([
        { kind: "timed_out", taskId: T, agentId: A1, reason: "ran longer than its limit of 60 s" }
      ])
      // And it stays due on every later pass until the repair is applied.
      yield* TestClock.adjust("1 hour")
      expect((yield* planNow(agent)).map((p) => p.kind)).toEqual(["timed_out"])
    }))

  it.effect("an agent that stops writing is stalled exactly when its stall limit has passed since its last output", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(START)
      const agent = yield* runningAgent({ stall_timeout_seconds: 30 })
      // No output yet: the start counts as the last output.
      yield* TestClock.adjust("30 seconds")
      expect(yield* planNow(agent)).toEqual([])
      yield* TestClock.adjust("1 millis")
      expect((yield* planNow(agent)).map((p) => p.kind)).toEqual(["stalled"])
      // Output 20 s into the run: quiet since then, so due 30 s after that output, not before.
      const outputAt = START + 20_000
      yield* TestClock.setTime(outputAt + 30_000)
      expect(yield* planNow(agent, outputAt)).toEqual([])
      yield* TestClock.adjust("1 millis")
      expect(yield* planNow(agent, outputAt)).toEqual([
        { kind: "stalled", taskId: T, agentId: A1, reason: "no new output for more than 30 s" }
      ])
    }))

  it.effect("with both limits, whichever passes first decides; the wall-clock limit wins when both have passed", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(START)
      const agent = yield* runningAgent({ timeout_seconds: 100, stall_timeout_seconds: 30 })
      const lastOutput = START + 80_000
      const at = (ms: number) => Effect.andThen(TestClock.setTime(ms), planNow(agent, lastOutput))
      const kinds = (planned: ReadonlyArray<Planned>) => planned.map((p) => p.kind)
      // Quiet since 80 s: stalled after 110 s, but the run's limit of 100 s passes first.
      expect(kinds(yield* at(START + 100_000))).toEqual([])
      expect(kinds(yield* at(START + 100_001))).toEqual(["timed_out"])
      expect(kinds(yield* at(START + 110_001))).toEqual(["timed_out"])
      // Output near the start: the stall limit passes first.
      const early = START + 1_000
      yield* TestClock.setTime(early + 30_000)
      expect(kinds(yield* planNow(agent, early))).toEqual([])
      yield* TestClock.adjust("1 millis")
      expect(kinds(yield* planNow(agent, early))).toEqual(["stalled"])
    }))

  it.effect("an agent without limits is never stopped by the watchdog, however long it runs or stays quiet", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(START)
      const agent = yield* runningAgent({})
      yield* TestClock.adjust("30 days")
      expect(yield* planNow(agent, START)).toEqual([])
      expect(overdue(agent, yield* Clock.currentTimeMillis, START)).toBeUndefined()
    }))
})
