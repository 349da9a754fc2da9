/** Which events a registry change makes: status changes of committed agents, and the queue's comings and goings. */
import { describe, expect, it } from "@effect/vitest"
import type { Agent, AgentStatus, QueueEntry } from "../../../src/domain/Agent.js"
import { changeEvents, ENDING_KINDS, LIFECYCLE_KINDS, queueEvents, statusEvents } from "../../../src/domain/Event.js"
import type { TaskRegistry } from "../../../src/domain/Task.js"

const AT = "2026-01-15T12:00:00.000Z"
const agent = (id: string, status: AgentStatus, extra: Record<string, unknown> = {}): Agent =>
  ({
    id,
    type: "w",
    tmux_session: `agent_${id}`,
    parent: "orchestrator",
    depth: 1,
    status,
    started_at: AT,
    ...extra
  }) as unknown as Agent
const entry = (id: string): QueueEntry =>
  ({
    id,
    type: "w",
    parent: "orchestrator",
    prompt_sha256: "0".repeat(64),
    owner_pid: 1,
    owner_host: "h",
    queued_at: AT,
    deadline: AT
  }) as unknown as QueueEntry
const task = (agents: ReadonlyArray<Agent>, queue?: ReadonlyArray<QueueEntry>): TaskRegistry =>
  ({ task_id: "TASK-t", agents, ...(queue !== undefined ? { queue } : {}) }) as unknown as TaskRegistry

const kinds = (before: TaskRegistry, after: TaskRegistry) =>
  changeEvents(before, after, AT).map((e) => [e.agent_id, e.kind])

describe("statusEvents", () => {
  it("a commit is spawned; a reservation that appears or goes makes nothing", () => {
    expect(kinds(task([]), task([agent("a", "reserved")]))).toEqual([])
    expect(kinds(task([agent("a", "reserved")]), task([agent("a", "running")]))).toEqual([["a", "spawned"]])
    expect(kinds(task([agent("a", "reserved")]), task([]))).toEqual([])
    expect(kinds(task([agent("a", "reserved")]), task([agent("a", "killed")]))).toEqual([])
  })

  it("each end of a live agent has its kind, an exit its code", () => {
    const ends: Array<[AgentStatus, string]> = [
      ["completed", "exited"],
      ["failed", "exited"],
      ["killed", "killed"],
      ["timed_out", "timed_out"],
      ["stalled", "stalled"],
      ["lost", "lost"],
      ["over_budget", "over_budget"]
    ]
    expect([...ENDING_KINDS].sort()).toEqual([...new Set(ends.map(([, kind]) => kind))].sort())
    expect([...LIFECYCLE_KINDS].sort()).toEqual(["spawned", ...ENDING_KINDS].sort())
    for (const [status, kind] of ends) {
      const [event] = statusEvents(
        task([agent("a", "running")]),
        task([agent("a", status, { exit: { exit_code: 7, last_lines: [], at: AT }, reason: "why" })]),
        AT
      )
      expect(event).toMatchObject({ kind, status, agent_id: "a", task_id: "TASK-t", reason: "why" })
      expect(event?.exit_code).toBe(kind === "exited" ? 7 : undefined)
    }
  })

  it("no change, no event; an already ended agent changed again makes none", () => {
    expect(kinds(task([agent("a", "running")]), task([agent("a", "running")]))).toEqual([])
    expect(kinds(task([agent("a", "running")]), task([agent("a", "working")]))).toEqual([])
    expect(kinds(task([agent("a", "killed")]), task([agent("a", "lost")]))).toEqual([])
  })
})

describe("queueEvents", () => {
  it("an entry added is queued; one gone is dequeued, with status reserved when it became the reservation", () => {
    expect(kinds(task([], []), task([], [entry("q")]))).toEqual([["q", "queued"]])
    const admitted = queueEvents(task([], [entry("q")]), task([agent("q", "reserved")], []), AT)
    expect(admitted).toEqual([{
      at: AT,
      task_id: "TASK-t",
      agent_id: "q",
      kind: "dequeued",
      parent: "orchestrator",
      status: "reserved"
    }])
    const gaveUp = queueEvents(task([], [entry("q")]), task([], []), AT)
    expect(gaveUp[0]).not.toHaveProperty("status")
  })
})
