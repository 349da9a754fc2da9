/**
 * Tests of the pure admission policy: one example per rule (asserting the exact typed outcome), and properties over
 * random snapshots, requests and request sequences that prove admission never overshoots a limit.
 *
 * The oracles below restate the rules independently of src/ (statuses, counts, windows), so a change in the policy or
 * in the status helpers it relies on shows up here.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Arbitrary from "effect/Arbitrary"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import {
  type Admission,
  type AdmissionRequest,
  type AdmissionSnapshot,
  decide,
  RATE_WINDOW_MS
} from "../../../src/admission/Admission.js"
import { type Agent, AgentStatus } from "../../../src/domain/Agent.js"
import {
  type AdmissionRejection,
  DepthExceeded,
  DuplicateAgent,
  IdempotencyConflict,
  LimitReached,
  ParentNotActive,
  ParentNotFound,
  RateLimited
} from "../../../src/domain/Errors.js"
import { ORCHESTRATOR } from "../../../src/domain/Ids.js"
import { activeCount, type TaskLimits, type TaskRegistry } from "../../../src/domain/Task.js"

// ---------------------------------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------------------------------

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0)
const TASK_ID = "TASK-admission-test"
const iso = (ms: number) => new Date(ms).toISOString()
const LONG_AGO = iso(NOW - 3_600_000)

const LIVE_STATUSES: ReadonlyArray<AgentStatus> = ["running", "working", "blocked"]
const ACTIVE_STATUSES: ReadonlyArray<AgentStatus> = ["reserved", ...LIVE_STATUSES]
const ENDED_STATUSES = [
  "completed",
  "failed",
  "killed",
  "error",
  "terminated",
  "timed_out",
  "stalled",
  "lost"
] as const satisfies ReadonlyArray<AgentStatus>

/**
 * An agent record with plain strings where the stored schema brands ids: admission is pure over already-decoded
 * records, and these fixtures (some deliberately odd, e.g. a start time that is not a date) are built, not decoded.
 */
type LooseAgent = Omit<Agent, "id" | "type" | "tmux_session" | "parent" | "engine"> & {
  readonly engine?: string
  readonly id: string
  readonly type: string
  readonly tmux_session: string
  readonly parent: string
}
const asAgent = (a: LooseAgent): Agent => a as Agent

const isActive = (a: Agent) => ACTIVE_STATUSES.includes(a.status)
const isLive = (a: Agent) => LIVE_STATUSES.includes(a.status)

/** A committed agent started an hour ago (outside the rate window) unless overridden. */
const agent = (id: string, overrides: Partial<LooseAgent> = {}): Agent =>
  asAgent({
    id,
    type: "worker",
    tmux_session: `agent_${id}`,
    parent: ORCHESTRATOR,
    depth: 1,
    status: "running",
    started_at: LONG_AGO,
    prompt_sha256: `sha-of-${id}`,
    engine: "claude",
    ...overrides
  })

const withoutEngine = (a: Agent): Agent => {
  const { engine: _engine, ...rest } = a
  return rest
}

/** Generous limits, so an example only trips the rule it is about. */
const ROOMY: TaskLimits = {
  max_concurrent: 50,
  max_agents: 1000,
  max_depth: 5,
  max_children_per_parent: 20,
  max_spawns_per_minute: 600
}

const task = (agents: ReadonlyArray<Agent>, limits: Partial<TaskLimits> = {}): TaskRegistry => ({
  task_id: TASK_ID as TaskRegistry["task_id"],
  task_description: "admission tests",
  created_at: LONG_AGO,
  workspace: "/tmp/spawnkit-admission-test",
  status: "active",
  agents,
  agent_hierarchy: {},
  total_spawned: 0,
  active_count: 0,
  ...ROOMY,
  ...limits
})

/** A task as an older registry writes it: without max_children_per_parent and max_spawns_per_minute. */
const legacyTask = (agents: ReadonlyArray<Agent>, limits: Partial<TaskLimits> = {}): TaskRegistry => {
  const { max_children_per_parent: _c, max_spawns_per_minute: _s, ...rest } = task(agents, limits)
  return rest
}

/** Snapshot whose global count is what the registry computes: every active record (reservations included) + others. */
const snapshot = (
  t: TaskRegistry,
  global: { readonly otherTasksActive?: number; readonly globalMaxConcurrent?: number } = {}
): AdmissionSnapshot => ({
  task: t,
  globalActive: activeCount(t.agents) + (global.otherTasksActive ?? 0),
  globalMaxConcurrent: global.globalMaxConcurrent ?? 1000
})

const request = (overrides: Partial<AdmissionRequest> = {}): AdmissionRequest => ({
  agentType: "worker",
  parent: ORCHESTRATOR,
  promptSha256: "sha-of-new-prompt",
  engine: "claude",
  ...overrides
})

const admitted = (depth: number): Result.Result<Admission, AdmissionRejection> =>
  Result.succeed({ _tag: "Admit", depth })

const rejected = (error: AdmissionRejection): Result.Result<Admission, AdmissionRejection> => Result.fail(error)

const failureOf = (result: Result.Result<Admission, AdmissionRejection>): AdmissionRejection => {
  if (Result.isSuccess(result)) throw new Error(`expected a rejection, got ${JSON.stringify(result.success)}`)
  return result.failure
}

const successOf = (result: Result.Result<Admission, AdmissionRejection>): Admission => {
  if (Result.isFailure(result)) throw new Error(`expected a success, got ${JSON.stringify(result.failure)}`)
  return result.success
}

// ---------------------------------------------------------------------------------------------------------------------
// Examples, one per rule
// ---------------------------------------------------------------------------------------------------------------------

describe("decide: admission and depth", () => {
  it("admits an orchestrator child of an empty task at depth 1", () => {
    expect(decide(snapshot(task([])), request(), NOW)).toStrictEqual(admitted(1))
  })

  it("admits a child of a running agent at the parent's depth + 1", () => {
    const parent = agent("lead", { depth: 2 })
    expect(decide(snapshot(task([parent])), request({ parent: "lead" }), NOW)).toStrictEqual(admitted(3))
  })

  it.each(LIVE_STATUSES)("admits children of a %s parent (a live agent)", (status) => {
    const parent = agent("lead", { status })
    expect(decide(snapshot(task([parent])), request({ parent: "lead" }), NOW)).toStrictEqual(admitted(2))
  })

  it("orchestrator children get depth 1 whatever the depth of other agents", () => {
    const deep = agent("deep", { depth: 4 })
    expect(decide(snapshot(task([deep])), request({ parent: ORCHESTRATOR }), NOW)).toStrictEqual(admitted(1))
  })

  it("admits a child whose depth equals max_depth", () => {
    const parent = agent("lead", { depth: 2 })
    expect(decide(snapshot(task([parent], { max_depth: 3 })), request({ parent: "lead" }), NOW)).toStrictEqual(
      admitted(3)
    )
  })

  it("rejects a child deeper than max_depth with DepthExceeded{depth: parent.depth + 1, max}", () => {
    const parent = agent("lead", { depth: 3 })
    expect(decide(snapshot(task([parent], { max_depth: 3 })), request({ parent: "lead" }), NOW)).toStrictEqual(
      rejected(new DepthExceeded({ depth: 4, max: 3, taskId: TASK_ID }))
    )
  })

  it("rejects even an orchestrator child with DepthExceeded{depth: 1} when max_depth is 0", () => {
    expect(decide(snapshot(task([], { max_depth: 0 })), request(), NOW)).toStrictEqual(
      rejected(new DepthExceeded({ depth: 1, max: 0, taskId: TASK_ID }))
    )
  })
})

describe("decide: parent", () => {
  it("rejects an unknown parent with ParentNotFound", () => {
    const t = task([agent("lead")])
    expect(decide(snapshot(t), request({ parent: "ghost" }), NOW)).toStrictEqual(
      rejected(new ParentNotFound({ parent: "ghost", taskId: TASK_ID }))
    )
  })

  it("rejects a reserved parent (a spawn still in flight) with ParentNotActive{status: reserved}", () => {
    const t = task([agent("lead", { status: "reserved" })])
    expect(decide(snapshot(t), request({ parent: "lead" }), NOW)).toStrictEqual(
      rejected(new ParentNotActive({ parent: "lead", status: "reserved", taskId: TASK_ID }))
    )
  })

  it.each(ENDED_STATUSES)("rejects a %s parent with ParentNotActive carrying that status", (status) => {
    const t = task([agent("lead", { status })])
    expect(decide(snapshot(t), request({ parent: "lead" }), NOW)).toStrictEqual(
      rejected(new ParentNotActive({ parent: "lead", status, taskId: TASK_ID }))
    )
  })
})

describe("decide: max_concurrent", () => {
  it("admits while the active count is one below max_concurrent", () => {
    const t = task([agent("a1"), agent("a2")], { max_concurrent: 3 })
    expect(decide(snapshot(t), request(), NOW)).toStrictEqual(admitted(1))
  })

  it("rejects with LimitReached{max_concurrent} when running agents fill it", () => {
    const t = task([agent("a1"), agent("a2")], { max_concurrent: 2 })
    expect(decide(snapshot(t), request(), NOW)).toStrictEqual(
      rejected(new LimitReached({ limit: "max_concurrent", current: 2, max: 2, taskId: TASK_ID }))
    )
  })

  it("counts reservations: one running + one reserved fill max_concurrent 2", () => {
    const t = task([agent("a1"), agent("a2", { status: "reserved" })], { max_concurrent: 2 })
    expect(decide(snapshot(t), request(), NOW)).toStrictEqual(
      rejected(new LimitReached({ limit: "max_concurrent", current: 2, max: 2, taskId: TASK_ID }))
    )
  })

  it("counts reservations alone: two reservations fill max_concurrent 2", () => {
    const t = task([agent("a1", { status: "reserved" }), agent("a2", { status: "reserved" })], { max_concurrent: 2 })
    expect(decide(snapshot(t), request(), NOW)).toStrictEqual(
      rejected(new LimitReached({ limit: "max_concurrent", current: 2, max: 2, taskId: TASK_ID }))
    )
  })

  it("counts working and blocked agents as active", () => {
    const t = task([agent("a1", { status: "working" }), agent("a2", { status: "blocked" })], { max_concurrent: 2 })
    expect(decide(snapshot(t), request(), NOW)).toStrictEqual(
      rejected(new LimitReached({ limit: "max_concurrent", current: 2, max: 2, taskId: TASK_ID }))
    )
  })

  it("does not count ended agents (completed, failed, killed, …) against max_concurrent", () => {
    const ended = ENDED_STATUSES.map((status, i) => agent(`ended${i}`, { status }))
    const t = task([...ended, agent("a1")], { max_concurrent: 2 })
    expect(decide(snapshot(t), request(), NOW)).toStrictEqual(admitted(1))
  })
})

describe("decide: max_agents", () => {
  it("counts ended agents: completed, failed and killed records fill max_agents 3", () => {
    const t = task(
      [agent("a1", { status: "completed" }), agent("a2", { status: "failed" }), agent("a3", { status: "killed" })],
      { max_agents: 3 }
    )
    expect(decide(snapshot(t), request(), NOW)).toStrictEqual(
      rejected(new LimitReached({ limit: "max_agents", current: 3, max: 3, taskId: TASK_ID }))
    )
  })

  it("counts reservations: a running agent and a reservation fill max_agents 2", () => {
    const t = task([agent("a1"), agent("a2", { status: "reserved" })], { max_agents: 2 })
    expect(decide(snapshot(t), request(), NOW)).toStrictEqual(
      rejected(new LimitReached({ limit: "max_agents", current: 2, max: 2, taskId: TASK_ID }))
    )
  })

  it("admits while the record count is one below max_agents", () => {
    const t = task([agent("a1", { status: "completed" }), agent("a2")], { max_agents: 3 })
    expect(decide(snapshot(t), request(), NOW)).toStrictEqual(admitted(1))
  })
})

describe("decide: global_max_concurrent", () => {
  it("rejects with LimitReached{global_max_concurrent} when other tasks hold every global slot", () => {
    const t = task([])
    expect(decide(snapshot(t, { otherTasksActive: 5, globalMaxConcurrent: 5 }), request(), NOW)).toStrictEqual(
      rejected(new LimitReached({ limit: "global_max_concurrent", current: 5, max: 5, taskId: TASK_ID }))
    )
  })

  it("counts this task's reservations in the global count even when the task itself has room", () => {
    const t = task([agent("a1", { status: "reserved" }), agent("a2", { status: "reserved" })], { max_concurrent: 10 })
    const s = snapshot(t, { otherTasksActive: 2, globalMaxConcurrent: 4 })
    expect(s.globalActive).toBe(4)
    expect(decide(s, request(), NOW)).toStrictEqual(
      rejected(new LimitReached({ limit: "global_max_concurrent", current: 4, max: 4, taskId: TASK_ID }))
    )
  })

  it("admits while the global count is one below the global maximum", () => {
    const t = task([agent("a1")])
    expect(decide(snapshot(t, { otherTasksActive: 2, globalMaxConcurrent: 4 }), request(), NOW)).toStrictEqual(
      admitted(1)
    )
  })
})

describe("decide: max_children_per_parent", () => {
  const lead = agent("lead")

  it("counts a reserved child: one running + one reserved child fill max_children_per_parent 2", () => {
    const t = task(
      [lead, agent("c1", { parent: "lead", depth: 2 }), agent("c2", { parent: "lead", depth: 2, status: "reserved" })],
      { max_children_per_parent: 2 }
    )
    expect(decide(snapshot(t), request({ parent: "lead" }), NOW)).toStrictEqual(
      rejected(new LimitReached({ limit: "max_children_per_parent", current: 2, max: 2, taskId: TASK_ID }))
    )
  })

  it("does not count ended children", () => {
    const t = task(
      [
        lead,
        agent("c1", { parent: "lead", depth: 2, status: "completed" }),
        agent("c2", { parent: "lead", depth: 2, status: "killed" }),
        agent("c3", { parent: "lead", depth: 2 })
      ],
      { max_children_per_parent: 2 }
    )
    expect(decide(snapshot(t), request({ parent: "lead" }), NOW)).toStrictEqual(admitted(2))
  })

  it("does not count children of other parents", () => {
    const other = agent("other")
    const t = task(
      [lead, other, agent("c1", { parent: "other", depth: 2 }), agent("c2", { parent: "other", depth: 2 })],
      { max_children_per_parent: 2 }
    )
    expect(decide(snapshot(t), request({ parent: "lead" }), NOW)).toStrictEqual(admitted(2))
  })

  it("does not apply to the orchestrator", () => {
    const t = task([agent("a1"), agent("a2"), agent("a3", { status: "reserved" })], { max_children_per_parent: 1 })
    expect(decide(snapshot(t), request({ parent: ORCHESTRATOR }), NOW)).toStrictEqual(admitted(1))
  })

  it("defaults to 20 children when the registry does not set it", () => {
    const children = (n: number) =>
      Array.from({ length: n }, (_, i) => agent(`c${i}`, { parent: "lead", depth: 2, prompt_sha256: `p${i}` }))
    expect(decide(snapshot(legacyTask([lead, ...children(19)])), request({ parent: "lead" }), NOW)).toStrictEqual(
      admitted(2)
    )
    expect(decide(snapshot(legacyTask([lead, ...children(20)])), request({ parent: "lead" }), NOW)).toStrictEqual(
      rejected(new LimitReached({ limit: "max_children_per_parent", current: 20, max: 20, taskId: TASK_ID }))
    )
  })
})

describe("decide: duplicates", () => {
  const first = agent("first", { type: "reviewer", prompt_sha256: "sha-A" })
  const again = request({ agentType: "reviewer", promptSha256: "sha-A" })

  it("rejects the same parent + type + prompt while the first is running with DuplicateAgent naming it", () => {
    expect(decide(snapshot(task([first])), again, NOW)).toStrictEqual(
      rejected(new DuplicateAgent({ existingAgentId: "first", taskId: TASK_ID }))
    )
  })

  it("treats a reservation as active: a duplicate of a reserved agent is rejected", () => {
    const t = task([{ ...first, status: "reserved" }])
    expect(decide(snapshot(t), again, NOW)).toStrictEqual(
      rejected(new DuplicateAgent({ existingAgentId: "first", taskId: TASK_ID }))
    )
  })

  it("detects duplicates among children of an agent parent too", () => {
    const lead = agent("lead")
    const child = agent("child", { parent: "lead", depth: 2, type: "reviewer", prompt_sha256: "sha-A" })
    expect(decide(snapshot(task([lead, child])), { ...again, parent: "lead" }, NOW)).toStrictEqual(
      rejected(new DuplicateAgent({ existingAgentId: "child", taskId: TASK_ID }))
    )
  })

  it("admits the same type with a different prompt (legitimate parallel work)", () => {
    expect(decide(snapshot(task([first])), { ...again, promptSha256: "sha-B" }, NOW)).toStrictEqual(admitted(1))
  })

  it("admits the same prompt with a different type", () => {
    expect(decide(snapshot(task([first])), { ...again, agentType: "tester" }, NOW)).toStrictEqual(admitted(1))
  })

  it("admits the same type and prompt under a different parent", () => {
    const lead = agent("lead")
    expect(decide(snapshot(task([lead, first])), { ...again, parent: "lead" }, NOW)).toStrictEqual(admitted(2))
  })

  it.each(ENDED_STATUSES)("admits a duplicate of an agent that ended as %s", (status) => {
    expect(decide(snapshot(task([{ ...first, status }])), again, NOW)).toStrictEqual(admitted(1))
  })

  it("rejects a duplicate even when it carries a fresh idempotency key", () => {
    const keyed = { ...first, idempotency_key: "key-1" }
    expect(decide(snapshot(task([keyed])), { ...again, idempotencyKey: "key-2" }, NOW)).toStrictEqual(
      rejected(new DuplicateAgent({ existingAgentId: "first", taskId: TASK_ID }))
    )
  })

  it("treats a record without an engine (older registry) as a duplicate whatever the requested engine", () => {
    expect(decide(snapshot(task([withoutEngine(first)])), { ...again, engine: "codex" }, NOW)).toStrictEqual(
      rejected(new DuplicateAgent({ existingAgentId: "first", taskId: TASK_ID }))
    )
  })

  it("treats the same parent, type and prompt on another engine as a duplicate of the active agent", () => {
    expect(decide(snapshot(task([first])), { ...again, engine: "gemini" }, NOW)).toStrictEqual(
      rejected(new DuplicateAgent({ existingAgentId: "first", taskId: TASK_ID }))
    )
  })
})

describe("decide: idempotency key", () => {
  const keyed = agent("keyed", { type: "reviewer", prompt_sha256: "sha-A", idempotency_key: "key-1" })
  const retry = request({ agentType: "reviewer", promptSha256: "sha-A", idempotencyKey: "key-1" })

  it("returns Existing with the very record for a retry with identical parameters", () => {
    const result = decide(snapshot(task([agent("other"), keyed])), retry, NOW)
    const success = successOf(result)
    expect(success).toStrictEqual({ _tag: "Existing", agent: keyed })
    expect(success._tag === "Existing" && success.agent).toBe(keyed)
  })

  it.each(["completed", "failed", "killed"] as const)(
    "returns Existing even after the agent ended as %s and every limit is full",
    (status) => {
      const ended = { ...keyed, status }
      const t = task([ended], { max_agents: 1, max_concurrent: 0, max_spawns_per_minute: 0, max_depth: 0 })
      expect(decide(snapshot(t, { otherTasksActive: 9, globalMaxConcurrent: 1 }), retry, NOW)).toStrictEqual(
        Result.succeed({ _tag: "Existing", agent: ended })
      )
    }
  )

  it("returns Existing for a retry whose first attempt is still reserved", () => {
    const inFlight = { ...keyed, status: "reserved" as const }
    expect(decide(snapshot(task([inFlight])), retry, NOW)).toStrictEqual(
      Result.succeed({ _tag: "Existing", agent: inFlight })
    )
  })

  it("returns Existing for a record without an engine (older registry) whatever the requested engine", () => {
    const legacy = withoutEngine(keyed)
    expect(decide(snapshot(task([legacy])), { ...retry, engine: "gemini" }, NOW)).toStrictEqual(
      Result.succeed({ _tag: "Existing", agent: legacy })
    )
  })

  const conflict = rejected(new IdempotencyConflict({ key: "key-1", existingAgentId: "keyed", taskId: TASK_ID }))

  it("rejects a reused key with a different agent type as IdempotencyConflict", () => {
    expect(decide(snapshot(task([keyed])), { ...retry, agentType: "tester" }, NOW)).toStrictEqual(conflict)
  })

  it("rejects a reused key with a different prompt as IdempotencyConflict", () => {
    expect(decide(snapshot(task([keyed])), { ...retry, promptSha256: "sha-B" }, NOW)).toStrictEqual(conflict)
  })

  it("rejects a reused key with a different parent as IdempotencyConflict", () => {
    const lead = agent("lead")
    expect(decide(snapshot(task([lead, keyed])), { ...retry, parent: "lead" }, NOW)).toStrictEqual(conflict)
  })

  it("rejects a reused key with a different engine than the recorded one as IdempotencyConflict", () => {
    expect(decide(snapshot(task([keyed])), { ...retry, engine: "codex" }, NOW)).toStrictEqual(conflict)
  })

  it("rejects a reused key whose agent ended when the parameters differ", () => {
    const ended = { ...keyed, status: "completed" as const }
    expect(decide(snapshot(task([ended])), { ...retry, promptSha256: "sha-B" }, NOW)).toStrictEqual(conflict)
  })

  it("decides a new key like a request without a key", () => {
    expect(decide(snapshot(task([keyed])), { ...retry, idempotencyKey: "key-2", promptSha256: "sha-B" }, NOW))
      .toStrictEqual(admitted(1))
  })
})

describe("decide: spawn rate", () => {
  it("uses a 60 s window", () => {
    expect(RATE_WINDOW_MS).toBe(60_000)
  })

  it("rejects with RateLimited once max spawns started in the last 60 s, retrying when the oldest leaves", () => {
    const t = task(
      [
        agent("a1", { started_at: iso(NOW - 50_000) }),
        agent("a2", { started_at: iso(NOW - 30_000) }),
        agent("a3", { started_at: iso(NOW - 10_000) })
      ],
      { max_spawns_per_minute: 3 }
    )
    expect(decide(snapshot(t), request(), NOW)).toStrictEqual(
      rejected(new RateLimited({ taskId: TASK_ID, max: 3, windowMs: 60_000, retryAfterMs: 10_000 }))
    )
  })

  it("counts every record started in the window, whatever its status (reserved, ended or live)", () => {
    const t = task(
      [
        agent("a1", { status: "reserved", started_at: iso(NOW - 1_000) }),
        agent("a2", { status: "completed", started_at: iso(NOW - 2_000) }),
        agent("a3", { status: "killed", started_at: iso(NOW - 3_000) })
      ],
      { max_spawns_per_minute: 3 }
    )
    const failure = failureOf(decide(snapshot(t), request(), NOW))
    expect(failure).toStrictEqual(
      new RateLimited({ taskId: TASK_ID, max: 3, windowMs: 60_000, retryAfterMs: 57_000 })
    )
  })

  it("no longer counts records started 60 s ago or earlier", () => {
    const t = task(
      [
        agent("a1", { started_at: iso(NOW - 60_000) }),
        agent("a2", { started_at: iso(NOW - 61_000) }),
        agent("a3", { started_at: iso(NOW - 59_999) })
      ],
      { max_spawns_per_minute: 2 }
    )
    expect(decide(snapshot(t), request(), NOW)).toStrictEqual(admitted(1))
  })

  it("reports a positive retryAfterMs after which the request is admitted, and not 1 ms sooner", () => {
    const t = task(
      [agent("a1", { started_at: iso(NOW - 45_500) }), agent("a2", { started_at: iso(NOW - 20_000) })],
      { max_spawns_per_minute: 2 }
    )
    const failure = failureOf(decide(snapshot(t), request(), NOW))
    expect(failure._tag).toBe("RateLimited")
    const retryAfterMs = failure._tag === "RateLimited" ? failure.retryAfterMs : -1
    expect(retryAfterMs).toBe(14_500)
    expect(failureOf(decide(snapshot(t), request(), NOW + retryAfterMs - 1))._tag).toBe("RateLimited")
    expect(decide(snapshot(t), request(), NOW + retryAfterMs)).toStrictEqual(admitted(1))
  })

  it("waits until enough spawns leave the window when more than the limit are in it", () => {
    const t = task(
      [
        agent("a1", { status: "completed", started_at: iso(NOW - 50_000) }),
        agent("a2", { status: "completed", started_at: iso(NOW - 40_000) }),
        agent("a3", { status: "completed", started_at: iso(NOW - 30_000) }),
        agent("a4", { status: "completed", started_at: iso(NOW - 20_000) })
      ],
      { max_spawns_per_minute: 2 }
    )
    const failure = failureOf(decide(snapshot(t), request(), NOW))
    const retryAfterMs = failure._tag === "RateLimited" ? failure.retryAfterMs : -1
    expect(retryAfterMs).toBe(30_000)
    expect(failureOf(decide(snapshot(t), request(), NOW + retryAfterMs - 1))._tag).toBe("RateLimited")
    expect(decide(snapshot(t), request(), NOW + retryAfterMs)).toStrictEqual(admitted(1))
  })

  it("reports the full window as retryAfterMs when the only spawn started just now", () => {
    const t = task([agent("a1", { started_at: iso(NOW) })], { max_spawns_per_minute: 1 })
    expect(decide(snapshot(t), request(), NOW)).toStrictEqual(
      rejected(new RateLimited({ taskId: TASK_ID, max: 1, windowMs: 60_000, retryAfterMs: 60_000 }))
    )
  })

  it("defaults to 600 spawns per minute when the registry does not set it", () => {
    const burst = (n: number) =>
      Array.from(
        { length: n },
        (_, i) => agent(`a${i}`, { status: "completed", started_at: iso(NOW - 30_000), prompt_sha256: `p${i}` })
      )
    expect(decide(snapshot(legacyTask(burst(599))), request(), NOW)).toStrictEqual(admitted(1))
    expect(decide(snapshot(legacyTask(burst(600))), request(), NOW)).toStrictEqual(
      rejected(new RateLimited({ taskId: TASK_ID, max: 600, windowMs: 60_000, retryAfterMs: 30_000 }))
    )
  })
})

// ---------------------------------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------------------------------

const int = (minimum: number, maximum: number) =>
  Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum, maximum })))

const ENGINES = ["claude", "codex", "gemini"] as const
const TYPES = ["worker", "reviewer", "tester"] as const
const promptOf = (i: number) => `sha-${i}`
const pick = <A>(values: ReadonlyArray<A>, i: number): A =>
  values[((i % values.length) + values.length) % values.length]!

/** Every status, weighted towards live and reserved agents so that parents are often usable. */
const STATUS_POOL: ReadonlyArray<AgentStatus> = [
  ...AgentStatus.literals,
  "running",
  "running",
  "running",
  "running",
  "running",
  "working",
  "reserved",
  "reserved"
]

/** Raw agent record: indices into small domains, so records collide on type, prompt, parent and key often. */
const AgentSpec = Arbitrary.all({
  type: int(0, 2),
  prompt: int(0, 2),
  parent: int(-1, 5), // -1: orchestrator; i: agent a<i> (which may not exist)
  status: int(0, STATUS_POOL.length - 1),
  depth: int(1, 4),
  startedAgoMs: int(-5_000, 150_000),
  badDate: int(0, 24), // 0: started_at is not a date
  engine: int(-1, 2), // -1: no engine (older registry)
  key: int(-8, 3) // negative: no idempotency key
})
type AgentSpec = typeof AgentSpec extends Arbitrary.Arbitrary<infer A> ? A : never

const buildAgent = (spec: AgentSpec, i: number, id: string, nowMs: number): Agent => {
  const base: LooseAgent = {
    id,
    type: pick(TYPES, spec.type),
    tmux_session: `agent_${id}`,
    parent: spec.parent < 0 ? ORCHESTRATOR : `a${spec.parent}`,
    depth: spec.depth,
    status: pick(STATUS_POOL, spec.status),
    started_at: spec.badDate === 0 ? `garbage-${i}` : iso(nowMs - spec.startedAgoMs),
    prompt_sha256: promptOf(spec.prompt)
  }
  return asAgent({
    ...base,
    ...(spec.engine >= 0 ? { engine: pick(ENGINES, spec.engine) } : {}),
    ...(spec.key >= 0 ? { idempotency_key: `k${spec.key}` } : {})
  })
}

const LimitsSpec = Arbitrary.all({
  max_concurrent: int(0, 10),
  max_agents: int(0, 14),
  max_depth: int(0, 6),
  max_children_per_parent: int(-1, 4), // -1: absent (default 20)
  max_spawns_per_minute: int(-1, 10), // -1: absent (default 600)
  otherTasksActive: int(0, 6),
  globalMaxConcurrent: int(1, 20)
})
type LimitsSpec = typeof LimitsSpec extends Arbitrary.Arbitrary<infer A> ? A : never

const buildTask = (limits: LimitsSpec, agents: ReadonlyArray<Agent>): TaskRegistry => {
  const t = legacyTask(agents, {
    max_concurrent: limits.max_concurrent,
    max_agents: limits.max_agents,
    max_depth: limits.max_depth
  })
  return {
    ...t,
    ...(limits.max_children_per_parent >= 0 ? { max_children_per_parent: limits.max_children_per_parent } : {}),
    ...(limits.max_spawns_per_minute >= 0 ? { max_spawns_per_minute: limits.max_spawns_per_minute } : {})
  }
}

/**
 * Raw request: either fresh, or a copy of an existing record's parameters with at most one of them changed.
 * The weights tune how often a request is fresh, names the orchestrator as parent, or carries no key, and `prompts`
 * how often fresh prompts collide.
 */
const requestSpec = (weights: { fresh: number; orchestrator: number; noKey: number; prompts: number }) =>
  Arbitrary.all({
    copyFrom: int(-weights.fresh, 11), // negative: fresh request; i: copy agents[i % n]
    change: int(0, 5), // 0, 5: identical copy; 1: type; 2: prompt; 3: parent; 4: engine
    type: int(0, 2),
    prompt: int(0, weights.prompts - 1),
    parent: int(-weights.orchestrator, 13), // negative: orchestrator; i: one of the candidate parents
    unknownParent: int(0, 19), // 0: a parent that is not in the task
    engine: int(0, 2),
    key: int(-weights.noKey - 3, 9) // i: key k<i>; -3..-1: a copy keeps the source's key (fresh: none); lower: none
  })
const RequestSpec = requestSpec({ fresh: 12, orchestrator: 7, noKey: 3, prompts: 3 })
type RequestSpec = typeof RequestSpec extends Arbitrary.Arbitrary<infer A> ? A : never

const parentOf = (spec: RequestSpec, candidates: ReadonlyArray<Agent>): string =>
  spec.unknownParent === 0
    ? "ghost"
    : spec.parent < 0 || candidates.length === 0
    ? ORCHESTRATOR
    : pick(candidates, spec.parent).id

/** Builds a request over `agents`; agent parents are picked among `parents` (default: any agent). */
const buildRequest = (
  spec: RequestSpec,
  agents: ReadonlyArray<Agent>,
  parents: ReadonlyArray<Agent> = agents
): AdmissionRequest => {
  const key = spec.key >= 0 ? `k${spec.key}` : undefined
  const keepsKey = spec.key < 0 && spec.key >= -3
  if (spec.copyFrom < 0 || agents.length === 0) {
    return {
      agentType: pick(TYPES, spec.type),
      parent: parentOf(spec, parents),
      promptSha256: promptOf(spec.prompt),
      engine: pick(ENGINES, spec.engine),
      idempotencyKey: key
    }
  }
  const source = pick(agents, spec.copyFrom)
  const copy: AdmissionRequest = {
    agentType: source.type,
    parent: source.parent,
    promptSha256: source.prompt_sha256 ?? promptOf(spec.prompt),
    engine: source.engine ?? pick(ENGINES, spec.engine),
    idempotencyKey: keepsKey ? source.idempotency_key : key
  }
  switch (spec.change) {
    case 1:
      return { ...copy, agentType: pick(TYPES, spec.type) }
    case 2:
      return { ...copy, promptSha256: promptOf(spec.prompt) }
    case 3:
      return { ...copy, parent: parentOf(spec, parents) }
    case 4:
      return { ...copy, engine: pick(ENGINES, spec.engine) }
    default:
      return copy
  }
}

interface Scenario {
  readonly snapshot: AdmissionSnapshot
  readonly request: AdmissionRequest
  readonly nowMs: number
}

const buildSnapshot = (limits: LimitsSpec, agents: ReadonlyArray<Agent>): AdmissionSnapshot => ({
  task: buildTask(limits, agents),
  globalActive: agents.filter(isActive).length + limits.otherTasksActive,
  globalMaxConcurrent: limits.globalMaxConcurrent
})

const ScenarioArb: Arbitrary.Arbitrary<Scenario> = Arbitrary.map(
  Arbitrary.all({
    limits: LimitsSpec,
    agents: Arbitrary.array(AgentSpec, { maxLength: 12 }),
    request: RequestSpec,
    nowShift: int(-86_400_000, 86_400_000)
  }),
  ({ agents, limits, nowShift, request: raw }): Scenario => {
    const nowMs = NOW + nowShift
    const records = agents.map((spec, i) => buildAgent(spec, i, `a${i}`, nowMs))
    return { snapshot: buildSnapshot(limits, records), request: buildRequest(raw, records), nowMs }
  }
)

// ---------------------------------------------------------------------------------------------------------------------
// Oracle: the rules restated over a snapshot
// ---------------------------------------------------------------------------------------------------------------------

interface Limits {
  readonly maxConcurrent: number
  readonly maxAgents: number
  readonly maxDepth: number
  readonly maxChildren: number
  readonly maxSpawnsPerMinute: number
  readonly globalMax: number
}

const limitsOfSnapshot = (s: AdmissionSnapshot): Limits => ({
  maxConcurrent: s.task.max_concurrent,
  maxAgents: s.task.max_agents,
  maxDepth: s.task.max_depth,
  maxChildren: s.task.max_children_per_parent ?? 20,
  maxSpawnsPerMinute: s.task.max_spawns_per_minute ?? 600,
  globalMax: s.globalMaxConcurrent
})

const activeOf = (agents: ReadonlyArray<Agent>) => agents.filter(isActive).length
const activeChildrenOf = (agents: ReadonlyArray<Agent>, parent: string) =>
  agents.filter((a) => isActive(a) && a.parent === parent).length
const recentStarts = (agents: ReadonlyArray<Agent>, nowMs: number) =>
  agents.filter((a) => Date.parse(a.started_at) > nowMs - 60_000)

/** Same spawn parameters; a record without an engine (older registry) matches any engine. */
/** Same parent, type and prompt: a duplicate while active, whatever the engine. */
const sameWork = (a: Agent, r: AdmissionRequest) =>
  a.type === r.agentType && a.parent === r.parent && a.prompt_sha256 === r.promptSha256

/** Same work on the same engine: what an idempotent retry must repeat. */
const sameParameters = (a: Agent, r: AdmissionRequest) =>
  sameWork(a, r) && (a.engine === undefined || a.engine === r.engine)

/** The record a new admission would append. */
const reservationFor = (r: AdmissionRequest, id: string, depth: number, nowMs: number): Agent =>
  asAgent({
    id,
    type: r.agentType,
    tmux_session: `agent_${id}`,
    parent: r.parent,
    depth,
    status: "reserved",
    started_at: iso(nowMs),
    prompt_sha256: r.promptSha256,
    engine: r.engine,
    ...(r.idempotencyKey !== undefined ? { idempotency_key: r.idempotencyKey } : {})
  })

/** Asserts that the snapshot plus the admitted reservation is within every limit. */
const expectAdmissionWithinLimits = (s: AdmissionSnapshot, r: AdmissionRequest, nowMs: number, depth: number) => {
  const limits = limitsOfSnapshot(s)
  const after = [...s.task.agents, reservationFor(r, "new", depth, nowMs)]
  expect(activeOf(after)).toBeLessThanOrEqual(limits.maxConcurrent)
  expect(after.length).toBeLessThanOrEqual(limits.maxAgents)
  expect(s.globalActive + 1).toBeLessThanOrEqual(limits.globalMax)
  expect(depth).toBeLessThanOrEqual(limits.maxDepth)
  expect(recentStarts(after, nowMs).length).toBeLessThanOrEqual(limits.maxSpawnsPerMinute)
  if (r.parent === ORCHESTRATOR) {
    expect(depth).toBe(1)
  } else {
    const parent = s.task.agents.find((a) => a.id === r.parent)
    expect(parent).toBeDefined()
    expect(parent !== undefined && isLive(parent)).toBe(true)
    expect(depth).toBe(parent!.depth + 1)
    expect(activeChildrenOf(after, r.parent)).toBeLessThanOrEqual(limits.maxChildren)
  }
  expect(s.task.agents.some((a) => isActive(a) && sameWork(a, r))).toBe(false)
  if (r.idempotencyKey !== undefined) {
    expect(s.task.agents.some((a) => a.idempotency_key === r.idempotencyKey)).toBe(false)
  }
}

/** Runs per property; size bounds the generated arrays (agents per snapshot, ops per sequence). */
const CHECK = { arbitrary: { runs: 400, size: 12 } }
const SEQUENCE_CHECK = { arbitrary: { runs: 300, size: 30 } }

// ---------------------------------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------------------------------

describe("decide: properties over random snapshots", () => {
  it.prop(
    "an Admit never takes any count past its limit: the snapshot plus the new reservation is within every limit",
    { scenario: ScenarioArb },
    ({ scenario: { nowMs, request: r, snapshot: s } }) => {
      const result = decide(s, r, nowMs)
      if (Result.isSuccess(result) && result.success._tag === "Admit") {
        expectAdmissionWithinLimits(s, r, nowMs, result.success.depth)
      }
    },
    CHECK
  )

  it.prop(
    "every rejection is justified by the snapshot and reports the actual count, limit and ids",
    { scenario: ScenarioArb },
    ({ scenario: { nowMs, request: r, snapshot: s } }) => {
      const result = decide(s, r, nowMs)
      if (Result.isSuccess(result)) return
      const e = result.failure
      const agents = s.task.agents
      const limits = limitsOfSnapshot(s)
      expect(e.taskId).toBe(TASK_ID)
      switch (e._tag) {
        case "IdempotencyConflict": {
          const previous = agents.find((a) => a.idempotency_key === r.idempotencyKey)
          expect(e.key).toBe(r.idempotencyKey)
          expect(previous?.id).toBe(e.existingAgentId)
          expect(sameParameters(previous!, r)).toBe(false)
          break
        }
        case "ParentNotFound":
          expect(e.parent).toBe(r.parent)
          expect(r.parent).not.toBe(ORCHESTRATOR)
          expect(agents.some((a) => a.id === r.parent)).toBe(false)
          break
        case "ParentNotActive": {
          const parent = agents.find((a) => a.id === r.parent)
          expect(e.parent).toBe(r.parent)
          expect(parent?.status).toBe(e.status)
          expect(isLive(parent!)).toBe(false)
          break
        }
        case "DepthExceeded": {
          const parent = agents.find((a) => a.id === r.parent)
          expect(e.depth).toBe(r.parent === ORCHESTRATOR ? 1 : parent!.depth + 1)
          expect(e.max).toBe(limits.maxDepth)
          expect(e.depth).toBeGreaterThan(e.max)
          break
        }
        case "DuplicateAgent": {
          const existing = agents.find((a) => a.id === e.existingAgentId)
          expect(existing).toBeDefined()
          expect(isActive(existing!)).toBe(true)
          expect(sameWork(existing!, r)).toBe(true)
          break
        }
        case "LimitReached": {
          const expected = {
            max_concurrent: [activeOf(agents), limits.maxConcurrent],
            max_agents: [agents.length, limits.maxAgents],
            global_max_concurrent: [s.globalActive, limits.globalMax],
            max_children_per_parent: [activeChildrenOf(agents, r.parent), limits.maxChildren]
          }[e.limit]
          expect([e.current, e.max]).toStrictEqual(expected)
          expect(e.current).toBeGreaterThanOrEqual(e.max)
          if (e.limit === "max_children_per_parent") expect(r.parent).not.toBe(ORCHESTRATOR)
          break
        }
        case "RateLimited": {
          const recent = recentStarts(agents, nowMs)
          expect(e.max).toBe(limits.maxSpawnsPerMinute)
          expect(e.windowMs).toBe(60_000)
          expect(recent.length).toBeGreaterThanOrEqual(e.max)
          expect(e.retryAfterMs).toBeGreaterThan(0)
          expect(e.retryAfterMs).toBeLessThanOrEqual(60_000)
          break
        }
      }
    },
    CHECK
  )

  it.prop(
    "admits, at parent depth + 1, whenever no key is reused and no rule or limit is violated",
    { scenario: ScenarioArb },
    ({ scenario: { nowMs, request: r, snapshot: s } }) => {
      const agents = s.task.agents
      const limits = limitsOfSnapshot(s)
      const parent = agents.find((a) => a.id === r.parent)
      const depth = r.parent === ORCHESTRATOR ? 1 : (parent?.depth ?? Number.NaN) + 1
      const allowed = (r.idempotencyKey === undefined || !agents.some((a) => a.idempotency_key === r.idempotencyKey)) &&
        (r.parent === ORCHESTRATOR || (parent !== undefined && isLive(parent))) &&
        depth <= limits.maxDepth &&
        !agents.some((a) => isActive(a) && sameWork(a, r)) &&
        agents.length < limits.maxAgents &&
        activeOf(agents) < limits.maxConcurrent &&
        s.globalActive < limits.globalMax &&
        (r.parent === ORCHESTRATOR || activeChildrenOf(agents, r.parent) < limits.maxChildren) &&
        recentStarts(agents, nowMs).length < limits.maxSpawnsPerMinute
      const result = decide(s, r, nowMs)
      const isAdmit = Result.isSuccess(result) && result.success._tag === "Admit"
      expect(isAdmit).toBe(allowed)
      if (allowed) expect(result).toStrictEqual(admitted(depth))
    },
    CHECK
  )

  it.prop(
    "an Existing result is the snapshot's first record with the requested idempotency key and identical parameters",
    { scenario: ScenarioArb },
    ({ scenario: { nowMs, request: r, snapshot: s } }) => {
      const result = decide(s, r, nowMs)
      if (Result.isFailure(result) || result.success._tag !== "Existing") return
      const existing = result.success.agent
      expect(r.idempotencyKey).toBeDefined()
      expect(existing.idempotency_key).toBe(r.idempotencyKey)
      expect(existing).toBe(s.task.agents.find((a) => a.idempotency_key === r.idempotencyKey))
      expect(sameParameters(existing, r)).toBe(true)
    },
    CHECK
  )

  it.prop(
    "decide is deterministic, leaves its inputs untouched and never throws",
    { scenario: ScenarioArb },
    ({ scenario: { nowMs, request: r, snapshot: s } }) => {
      const before = JSON.stringify({ s, r })
      let first: Result.Result<Admission, AdmissionRejection> | undefined
      expect(() => {
        first = decide(s, r, nowMs)
      }).not.toThrow()
      const second = decide(structuredClone(s), structuredClone(r), nowMs)
      expect(second).toStrictEqual(first)
      expect(decide(s, r, nowMs)).toStrictEqual(first)
      expect(JSON.stringify({ s, r })).toBe(before)
    },
    CHECK
  )

  it.prop(
    "a RateLimited request with exactly max spawns in the window is admitted at now + retryAfterMs, not 1 ms sooner",
    { scenario: ScenarioArb },
    ({ scenario: { nowMs, request: r, snapshot: s } }) => {
      const result = decide(s, r, nowMs)
      if (Result.isSuccess(result) || result.failure._tag !== "RateLimited") return
      const recent = recentStarts(s.task.agents, nowMs)
      // The window clears at now + retryAfterMs only when one departure suffices (max > 0, exactly max recent starts)
      // and no record is dated in the future.
      if (
        result.failure.max === 0 || recent.length !== result.failure.max ||
        recent.some((a) => Date.parse(a.started_at) > nowMs)
      ) return
      const retryAfterMs = result.failure.retryAfterMs
      expect(failureOf(decide(s, r, nowMs + retryAfterMs - 1))._tag).toBe("RateLimited")
      expect(Result.isSuccess(decide(s, r, nowMs + retryAfterMs))).toBe(true)
    },
    CHECK
  )

  it.effect("the generators reach every outcome of decide (the properties above are not vacuous)", () =>
    Effect.gen(function*() {
      const samples = yield* Arbitrary.sampleEffect(ScenarioArb, { count: 2000, seed: 20260115, size: 12 })
      const seen = new Set<string>()
      for (const { nowMs, request: r, snapshot: s } of samples) {
        const result = decide(s, r, nowMs)
        seen.add(
          Result.isSuccess(result)
            ? result.success._tag
            : result.failure._tag === "LimitReached"
            ? `LimitReached:${result.failure.limit}`
            : result.failure._tag
        )
      }
      expect([...seen].sort()).toStrictEqual([
        "Admit",
        "DepthExceeded",
        "DuplicateAgent",
        "Existing",
        "IdempotencyConflict",
        "LimitReached:global_max_concurrent",
        "LimitReached:max_agents",
        "LimitReached:max_children_per_parent",
        "LimitReached:max_concurrent",
        "ParentNotActive",
        "ParentNotFound",
        "RateLimited"
      ])
    }))
})

// ---------------------------------------------------------------------------------------------------------------------
// Sequences: every interleaving of spawn transactions is some sequence of decisions on successive snapshots
// ---------------------------------------------------------------------------------------------------------------------

const OpSpec = Arbitrary.all({
  kind: int(0, 9), // 0-5: spawn request; 6-7: commit a reservation; 8: end an active agent; 9: time passes
  request: requestSpec({ fresh: 30, orchestrator: 6, noKey: 12, prompts: 12 }),
  target: int(0, 40), // which reservation / active agent; for spawns, 0 mod 4 also lets any agent be the parent
  endAs: Arbitrary.schema(Schema.Literals(ENDED_STATUSES)),
  tickMs: int(1, 45_000)
})

const SequenceArb = Arbitrary.all({
  // Zero limits (which admit nothing) are covered by the single-decision properties; sequences need room to fill up.
  limits: Arbitrary.all({
    max_concurrent: int(1, 10),
    max_agents: int(1, 30),
    max_depth: int(1, 6),
    max_children_per_parent: int(-1, 3),
    max_spawns_per_minute: int(-1, 12),
    otherTasksActive: int(0, 4),
    globalMaxConcurrent: int(1, 16)
  }),
  initial: Arbitrary.array(AgentSpec, { maxLength: 5 }),
  ops: Arbitrary.array(OpSpec, { minLength: 1, maxLength: 30 })
})
type SequenceSpec = typeof SequenceArb extends Arbitrary.Arbitrary<infer A> ? A : never

interface SimState {
  readonly agents: ReadonlyArray<Agent>
  readonly nowMs: number
}

interface Counts {
  readonly active: number
  readonly total: number
  readonly global: number
  readonly recent: number
  readonly children: ReadonlyMap<string, number>
}

const countsOf = (state: SimState, otherTasksActive: number): Counts => {
  const children = new Map<string, number>()
  for (const a of state.agents) {
    if (a.parent !== ORCHESTRATOR && isActive(a)) children.set(a.parent, (children.get(a.parent) ?? 0) + 1)
  }
  return {
    active: activeOf(state.agents),
    total: state.agents.length,
    global: activeOf(state.agents) + otherTasksActive,
    recent: recentStarts(state.agents, state.nowMs).length,
    children
  }
}

const boundsOf = (limits: Limits) => ({
  active: limits.maxConcurrent,
  total: limits.maxAgents,
  global: limits.globalMax,
  recent: limits.maxSpawnsPerMinute
})

/** Every count is within its limit, or at most where it already was (admission never pushes one further over). */
const expectNotPushedOver = (before: Counts, after: Counts, limits: Limits) => {
  const bounds = boundsOf(limits)
  for (const k of ["active", "total", "global", "recent"] as const) {
    expect(after[k], k).toBeLessThanOrEqual(Math.max(before[k], bounds[k]))
  }
  for (const [parent, n] of after.children) {
    const bound = Math.max(before.children.get(parent) ?? 0, limits.maxChildren)
    expect(n, `children of ${parent}`).toBeLessThanOrEqual(bound)
  }
}

const withinLimits = (c: Counts, limits: Limits) => {
  const bounds = boundsOf(limits)
  return (["active", "total", "global", "recent"] as const).every((k) => c[k] <= bounds[k]) &&
    [...c.children.values()].every((n) => n <= limits.maxChildren)
}

/** Runs the ops against the registry one transaction at a time, checking the limits after each, and returns stats. */
const simulate = (spec: SequenceSpec, lifecycle: boolean) => {
  const records = spec.initial.map((a, i) => buildAgent(a, i, `a${i}`, NOW))
  const base = buildSnapshot(spec.limits, records)
  const limits = limitsOfSnapshot(base)
  const other = spec.limits.otherTasksActive
  let state: SimState = { agents: records, nowMs: NOW }
  const initialCounts = countsOf(state, other)
  const startedWithin = withinLimits(initialCounts, limits)
  let admits = 0
  const filledByAdmission = new Set<string>()
  for (const op of spec.ops) {
    const before = countsOf(state, other)
    const kind = lifecycle ? op.kind : 0
    if (kind <= 5) {
      // Agent parents are mostly picked among live agents, so that admissions build a tree up to the limits.
      const live = state.agents.filter(isLive)
      const r = buildRequest(op.request, state.agents, op.target % 4 === 0 || live.length === 0 ? state.agents : live)
      const s: AdmissionSnapshot = {
        task: { ...base.task, agents: state.agents },
        globalActive: before.global,
        globalMaxConcurrent: base.globalMaxConcurrent
      }
      const result = decide(s, r, state.nowMs)
      if (Result.isSuccess(result) && result.success._tag === "Admit") {
        admits++
        expectAdmissionWithinLimits(s, r, state.nowMs, result.success.depth)
        const reservation = reservationFor(r, `n${admits}`, result.success.depth, state.nowMs)
        state = { ...state, agents: [...state.agents, reservation] }
        const after = countsOf(state, other)
        expect(after.active).toBeLessThanOrEqual(limits.maxConcurrent)
        expect(after.total).toBeLessThanOrEqual(limits.maxAgents)
        expect(after.global).toBeLessThanOrEqual(limits.globalMax)
        expect(after.recent).toBeLessThanOrEqual(limits.maxSpawnsPerMinute)
        if (r.parent !== ORCHESTRATOR) expect(after.children.get(r.parent)).toBeLessThanOrEqual(limits.maxChildren)
        if (after.active === limits.maxConcurrent) filledByAdmission.add("max_concurrent")
        if (after.total === limits.maxAgents) filledByAdmission.add("max_agents")
        if (after.global === limits.globalMax) filledByAdmission.add("global_max_concurrent")
        if (after.recent === limits.maxSpawnsPerMinute) filledByAdmission.add("max_spawns_per_minute")
        if (r.parent !== ORCHESTRATOR && after.children.get(r.parent) === limits.maxChildren) {
          filledByAdmission.add("max_children_per_parent")
        }
        if (result.success.depth === limits.maxDepth) filledByAdmission.add("max_depth")
      } else if (Result.isSuccess(result) && result.success._tag === "Existing") {
        expect(result.success.agent.idempotency_key).toBe(r.idempotencyKey)
      }
    } else if (kind <= 7) {
      const reserved = state.agents.filter((a) => a.status === "reserved")
      if (reserved.length > 0) {
        const id = pick(reserved, op.target).id
        state = { ...state, agents: state.agents.map((a) => (a.id === id ? { ...a, status: "running" } : a)) }
      }
    } else if (kind === 8) {
      const active = state.agents.filter(isActive)
      if (active.length > 0) {
        const id = pick(active, op.target).id
        state = { ...state, agents: state.agents.map((a) => (a.id === id ? { ...a, status: op.endAs } : a)) }
      }
    } else {
      state = { ...state, nowMs: state.nowMs + op.tickMs }
    }
    const after = countsOf(state, other)
    expectNotPushedOver(before, after, limits)
    if (startedWithin) expect(withinLimits(after, limits)).toBe(true)
  }
  const final = countsOf(state, other)
  expectNotPushedOver(initialCounts, final, limits)
  for (const a of state.agents.slice(records.length)) expect(a.depth).toBeLessThanOrEqual(limits.maxDepth)
  return { admits, startedWithin, filledByAdmission }
}

describe("decide: sequences of transactions (no overshoot under any interleaving)", () => {
  it.prop(
    "applying random requests one after another, each Admit appending a reservation, never ends above any limit",
    { sequence: SequenceArb },
    ({ sequence }) => {
      simulate(sequence, false)
    },
    SEQUENCE_CHECK
  )

  it.prop(
    "with commits, agents ending and time passing between requests, no limit is ever pushed over",
    { sequence: SequenceArb },
    ({ sequence }) => {
      simulate(sequence, true)
    },
    SEQUENCE_CHECK
  )

  it.effect("the sequence generator fills every limit through admissions (the properties above are not vacuous)", () =>
    Effect.gen(function*() {
      const samples = yield* Arbitrary.sampleEffect(SequenceArb, { count: 300, seed: 42, size: 30 })
      for (const lifecycle of [false, true]) {
        const filled: Record<string, number> = {}
        let admits = 0
        let startedWithin = 0
        for (const spec of samples) {
          const stats = simulate(spec, lifecycle)
          admits += stats.admits
          if (stats.startedWithin) startedWithin++
          for (const limit of stats.filledByAdmission) filled[limit] = (filled[limit] ?? 0) + 1
        }
        expect(admits, `admissions (lifecycle: ${lifecycle})`).toBeGreaterThan(150)
        expect(startedWithin, `sequences starting within limits (lifecycle: ${lifecycle})`).toBeGreaterThan(100)
        for (
          const limit of [
            "max_concurrent",
            "max_agents",
            "global_max_concurrent",
            "max_children_per_parent",
            "max_spawns_per_minute",
            "max_depth"
          ]
        ) {
          expect(filled[limit] ?? 0, `sequences in which admission filled ${limit} (lifecycle: ${lifecycle})`)
            .toBeGreaterThanOrEqual(4)
        }
      }
    }))
})
