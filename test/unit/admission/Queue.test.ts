/**
 * The queue's part of admission: waiting spawns go strictly first come, first served; anyone else counts those
 * waiting as taking the next slots; a queued twin is a duplicate; an entry past its deadline no longer counts.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Result from "effect/Result"
import { decide, queuedAhead, waitingEntries } from "../../../src/admission/Admission.js"
import type { Agent, QueueEntry } from "../../../src/domain/Agent.js"
import { ORCHESTRATOR } from "../../../src/domain/Ids.js"
import type { TaskRegistry } from "../../../src/domain/Task.js"

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0)
const iso = (ms: number) => new Date(ms).toISOString()

const running = (id: string): Agent =>
  ({
    id,
    type: "worker",
    tmux_session: `agent_${id}`,
    parent: ORCHESTRATOR,
    depth: 1,
    status: "running",
    started_at: iso(NOW - 3_600_000),
    prompt_sha256: `sha-of-${id}`
  }) as unknown as Agent

const entry = (id: string, overrides: Partial<Record<keyof QueueEntry, unknown>> = {}): QueueEntry =>
  ({
    id,
    type: "worker",
    parent: ORCHESTRATOR,
    prompt_sha256: `sha-of-${id}`,
    owner_pid: 1,
    owner_host: "h",
    queued_at: iso(NOW - 1000),
    deadline: iso(NOW + 60_000),
    ...overrides
  }) as unknown as QueueEntry

const task = (agents: ReadonlyArray<Agent>, queue: ReadonlyArray<QueueEntry>, maxConcurrent: number): TaskRegistry =>
  ({
    task_id: "TASK-queue-test",
    task_description: "queue",
    created_at: iso(NOW - 3_600_000),
    workspace: "/tmp/TASK-queue-test",
    status: "active",
    agents,
    agent_hierarchy: {},
    max_agents: 100,
    max_depth: 5,
    max_concurrent: maxConcurrent,
    total_spawned: agents.length,
    active_count: agents.length,
    queue
  }) as unknown as TaskRegistry

const ask = (t: TaskRegistry, prompt: string, queueEntryId?: string, globalMax = 1000) =>
  decide(
    { task: t, globalActive: t.agents.length, globalMaxConcurrent: globalMax },
    { agentType: "worker", parent: ORCHESTRATOR, promptSha256: prompt, engine: "claude", queueEntryId },
    NOW
  )

const tagOf = (r: ReturnType<typeof ask>) => (Result.isFailure(r) ? r.failure._tag : r.success._tag)

describe("admission with a queue", () => {
  it("admits the head of the line into a free slot, and no one behind it", () => {
    const t = task([running("a")], [entry("q1"), entry("q2")], 2)
    expect(tagOf(ask(t, "sha-of-q1", "q1"))).toBe("Admit")
    expect(tagOf(ask(t, "sha-of-q2", "q2"))).toBe("LimitReached")
  })

  it("a spawn that is not in line counts those waiting as taking the next slots", () => {
    const t = task([running("a")], [entry("q1")], 3)
    // 1 running + 1 waiting < 3: there is room for one more.
    expect(tagOf(ask(t, "new"))).toBe("Admit")
    const full = task([running("a")], [entry("q1"), entry("q2")], 3)
    const refused = ask(full, "new")
    expect(Result.isFailure(refused) && refused.failure).toMatchObject({
      _tag: "LimitReached",
      limit: "max_concurrent"
    })
  })

  it("the same holds for the global limit", () => {
    const t = task([running("a")], [entry("q1")], 100)
    const refused = ask(t, "new", undefined, 2)
    expect(Result.isFailure(refused) && refused.failure).toMatchObject({ limit: "global_max_concurrent" })
    expect(tagOf(ask(t, "sha-of-q1", "q1", 2))).toBe("Admit")
  })

  it("refuses a twin of a waiting spawn at once, by work or by idempotency key", () => {
    const t = task([], [entry("q1", { idempotency_key: "k1" })], 5)
    const twin = ask(t, "sha-of-q1")
    expect(Result.isFailure(twin) && twin.failure).toMatchObject({ _tag: "DuplicateAgent", existingAgentId: "q1" })
    const sameKey = decide(
      { task: t, globalActive: 0, globalMaxConcurrent: 100 },
      { agentType: "other", parent: ORCHESTRATOR, promptSha256: "x", engine: "claude", idempotencyKey: "k1" },
      NOW
    )
    expect(Result.isFailure(sameKey) && sameKey.failure._tag).toBe("DuplicateAgent")
    // Its own entry is no twin of itself.
    expect(tagOf(ask(t, "sha-of-q1", "q1"))).toBe("Admit")
  })

  it("entries past their deadline have given up: they neither count nor block", () => {
    const stale = entry("old", { deadline: iso(NOW - 1) })
    const t = task([running("a")], [stale, entry("q1")], 2)
    expect(waitingEntries(t, NOW).map((e) => e.id)).toEqual(["q1"])
    expect(tagOf(ask(t, "sha-of-q1", "q1"))).toBe("Admit")
  })

  it("queuedAhead: the entries before one's own, or all of them for a request without one", () => {
    const line = [entry("q1"), entry("q2"), entry("q3")]
    expect(queuedAhead(line, "q1")).toBe(0)
    expect(queuedAhead(line, "q3")).toBe(2)
    expect(queuedAhead(line, undefined)).toBe(3)
    expect(queuedAhead(line, "gone")).toBe(3)
  })
})
