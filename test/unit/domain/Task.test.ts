/**
 * Records and their derived fields: which statuses hold a slot or are live, a task's limits with defaults for older
 * registries, and the counts and hierarchy rewritten from the records on every write (never kept as counters).
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Schema from "effect/Schema"
import { Agent, AgentStatus, isActiveStatus, isLiveStatus } from "../../../src/domain/Agent.js"
import { activeCount, DEFAULT_LIMITS, limitsOf, TaskRegistry, withDerivedFields } from "../../../src/domain/Task.js"
import { taskJson as taskRecord } from "../support/Records.js"

const T = "TASK-20261202-120000-dddddddd"
const AT = "2026-12-02T12:00:00.000Z"

const agentJson = (id: string, status: AgentStatus, parent = "orchestrator") => ({
  id,
  type: "worker",
  tmux_session: `agent_${id}`,
  parent,
  depth: parent === "orchestrator" ? 1 : 2,
  status,
  started_at: AT
})

const taskJson = (agents: ReadonlyArray<unknown>, extra: Record<string, unknown> = {}) =>
  taskRecord({ task_id: T, created_at: AT, workspace: `/srv/home/${T}` }, agents, extra)

const decodeTask = Schema.decodeUnknownSync(TaskRegistry)

describe("statuses", () => {
  const table: ReadonlyArray<readonly [AgentStatus, boolean, boolean]> = [
    ["reserved", true, false],
    ["running", true, true],
    ["working", true, true],
    ["blocked", true, true],
    ["completed", false, false],
    ["failed", false, false],
    ["killed", false, false],
    ["error", false, false],
    ["terminated", false, false],
    ["timed_out", false, false],
    ["stalled", false, false],
    ["lost", false, false],
    ["over_budget", false, false]
  ]
  it.effect("every status is in the table: holds a slot (active) and is a live agent, or neither", () =>
    Effect.sync(() => {
      expect(table.map(([s]) => s).sort()).toEqual([...AgentStatus.literals].sort())
      for (const [status, active, live] of table) {
        expect(isActiveStatus(status), status).toBe(active)
        expect(isLiveStatus(status), status).toBe(live)
      }
    }))
})

describe("the stored agent record", () => {
  it.effect("its session name must be derived from its id", () =>
    Effect.sync(() => {
      const decode = Schema.decodeUnknownExit(Agent)
      expect(Exit.isSuccess(decode(agentJson("a1", "running")))).toBe(true)
      const exit = decode({ ...agentJson("a1", "running"), tmux_session: "agent_other" })
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) expect(String(exit.cause)).toContain("Expected tmux_session agent_a1")
    }))

  it.effect("a time that does not parse, a status it does not know and limits below 1 are refused", () =>
    Effect.sync(() => {
      const decode = Schema.decodeUnknownExit(Agent)
      for (
        const bad of [
          { started_at: "yesterday" },
          { status: "paused" },
          { timeout_seconds: 0 },
          { stall_timeout_seconds: -5 },
          { progress: 101 },
          { depth: -1 }
        ]
      ) {
        expect(Exit.isFailure(decode({ ...agentJson("a1", "running"), ...bad })), JSON.stringify(bad)).toBe(true)
      }
    }))
})

describe("limitsOf", () => {
  it.effect("takes the task's own limits, with defaults for the ones an older registry lacks", () =>
    Effect.sync(() => {
      expect(limitsOf(decodeTask(taskJson([])))).toEqual({
        max_concurrent: 20,
        max_agents: 45,
        max_depth: 5,
        max_children_per_parent: DEFAULT_LIMITS.max_children_per_parent,
        max_spawns_per_minute: DEFAULT_LIMITS.max_spawns_per_minute
      })
      expect(limitsOf(decodeTask(taskJson([], {
        max_concurrent: 3,
        max_agents: 7,
        max_depth: 2,
        max_children_per_parent: 4,
        max_spawns_per_minute: 9
      })))).toEqual({
        max_concurrent: 3,
        max_agents: 7,
        max_depth: 2,
        max_children_per_parent: 4,
        max_spawns_per_minute: 9
      })
    }))
})

describe("withDerivedFields", () => {
  it.effect("rewrites counts and hierarchy from the records, ignoring the stored ones; reservations count only as slots", () =>
    Effect.sync(() => {
      const task = decodeTask(taskJson([
        agentJson("lead", "running"),
        agentJson("c1", "completed", "lead"),
        agentJson("c2", "reserved", "lead"),
        agentJson("c3", "killed", "lead"),
        agentJson("solo", "completed")
      ], { total_spawned: 99, active_count: 99, completed_count: 99, agent_hierarchy: { ghost: ["x"] } }))
      const derived = withDerivedFields(task)
      expect(derived.agent_hierarchy).toEqual({ orchestrator: ["lead", "solo"], lead: ["c1", "c3"] })
      expect(derived.total_spawned).toBe(4)
      expect(derived.active_count).toBe(2)
      expect(derived.completed_count).toBe(2)
      expect(activeCount(task.agents)).toBe(2)
      // The records themselves are untouched, and the result is a registry spawnkit can read back.
      expect(derived.agents).toEqual(task.agents)
      expect(decodeTask(Schema.encodeSync(TaskRegistry)(derived))).toEqual(derived)
    }))

  it.effect("an empty task has no hierarchy and zero counts", () =>
    Effect.sync(() => {
      const derived = withDerivedFields(decodeTask(taskJson([])))
      expect([derived.agent_hierarchy, derived.total_spawned, derived.active_count, derived.completed_count]).toEqual([
        {},
        0,
        0,
        0
      ])
    }))
})
