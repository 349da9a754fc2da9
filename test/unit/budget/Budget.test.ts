/**
 * Budgets as pure decisions: spend summed from the records under each cap, admission refusing a spawn under a spent
 * cap (the task's or any ancestor's), the budget left for `--max-budget-usd`, and which agents a spent budget stops
 * (active ones under it, reservations included, deepest first), plus the walls of usage limits.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { decide } from "../../../src/admission/Admission.js"
import { budgetRefusal, overBudgetTargets, remainingUsd, stopReason } from "../../../src/budget/Budget.js"
import { spendOf, usageReport } from "../../../src/budget/Spend.js"
import { TaskRegistry } from "../../../src/domain/Task.js"
import { parseWalls, SEVEN_DAYS_MS, wallFor } from "../../../src/host/UsageWalls.js"
import { taskJson } from "../support/Records.js"

const T = "TASK-20261203-090000-0000abcd"
const AT = "2026-12-03T09:00:00.000Z"

/** An agent record with `output` output tokens spent at $`cost`. */
const agent = (
  id: string,
  parent: string,
  depth: number,
  status: string,
  spent: { readonly output?: number; readonly cost?: number } = {},
  extra: Record<string, unknown> = {}
) => ({
  id,
  type: "w",
  tmux_session: `agent_${id}`,
  parent,
  depth,
  status,
  started_at: AT,
  ...(spent.output !== undefined || spent.cost !== undefined
    ? {
      usage: {
        tokens: { input: 0, output: spent.output ?? 0, cache_creation: 0, cache_read: 0 },
        estimated_cost_usd: spent.cost ?? 0,
        cost_usd: spent.cost ?? 0,
        log_offset: 0
      }
    }
    : {}),
  ...extra
})

const task = (agents: ReadonlyArray<unknown>, extra: Record<string, unknown> = {}): TaskRegistry =>
  Schema.decodeUnknownSync(TaskRegistry)(
    taskJson({ task_id: T, created_at: AT, workspace: `/h/${T}` }, agents, extra),
    { onExcessProperty: "error" }
  )

/**
 *   a (budget 10,000 tokens)      b
 *   ├─ a1                          └─ b1
 *   │  └─ a11
 *   └─ a2 (reserved: a spawn in flight)
 */
const tree = (spent: Record<string, number>, extra: Record<string, unknown> = {}) =>
  task([
    agent("a", "orchestrator", 1, "running", { output: spent["a"] ?? 0 }, { budget: { max_tokens: 10_000 } }),
    agent("a1", "a", 2, "running", { output: spent["a1"] ?? 0 }),
    agent("a11", "a1", 3, "running", { output: spent["a11"] ?? 0 }),
    agent("a2", "a", 2, "reserved"),
    agent("b", "orchestrator", 1, "running", { output: spent["b"] ?? 0 }),
    agent("b1", "b", 2, "completed", { output: spent["b1"] ?? 0 })
  ], extra)

describe("admission under budgets", () => {
  it("refuses a spawn under a spent subtree cap, naming the agent, spent and cap; admits beside it", () => {
    const t = tree({ a: 4000, a1: 3000, a11: 3000 })
    expect(budgetRefusal(t, "a11")).toMatchObject({
      _tag: "BudgetExceeded",
      agentId: "a",
      kind: "tokens",
      spent: 10_000,
      cap: 10_000
    })
    expect(budgetRefusal(t, "a")).toMatchObject({ agentId: "a" })
    expect(budgetRefusal(t, "b")).toBeUndefined()
    expect(budgetRefusal(t, "orchestrator")).toBeUndefined()
    expect(budgetRefusal(tree({ a: 4000, a1: 3000, a11: 2999 }), "a11")).toBeUndefined()
  })

  it("refuses any spawn once the task's cap is spent, ended agents' spend included", () => {
    const t = tree({ b1: 5000, b: 1000 }, { max_tokens: 6000 })
    expect(budgetRefusal(t, "orchestrator")).toMatchObject({ kind: "tokens", spent: 6000, cap: 6000 })
    expect(budgetRefusal(t, "orchestrator")?.agentId).toBeUndefined()
    const costly = task([agent("x", "orchestrator", 1, "completed", { cost: 2.5 })], { max_cost_usd: 2.5 })
    expect(budgetRefusal(costly, "orchestrator")).toMatchObject({ kind: "cost_usd", spent: 2.5, cap: 2.5 })
    expect(
      budgetRefusal(
        task([agent("x", "orchestrator", 1, "completed", { cost: 2.4 })], { max_cost_usd: 2.5 }),
        "orchestrator"
      )
    )
      .toBeUndefined()
  })

  it("is part of the admission decision, after the parent checks", () => {
    const t = tree({ a: 10_000 })
    const refused = decide(
      { task: t, globalActive: 0, globalMaxConcurrent: 100 },
      { agentType: "w", parent: "a1", promptSha256: "0".repeat(64), engine: "custom" },
      Date.parse(AT)
    )
    expect(Result.isFailure(refused) && refused.failure._tag).toBe("BudgetExceeded")
    const admitted = decide(
      { task: t, globalActive: 0, globalMaxConcurrent: 100 },
      { agentType: "w", parent: "b", promptSha256: "0".repeat(64), engine: "custom" },
      Date.parse(AT)
    )
    expect(Result.isSuccess(admitted)).toBe(true)
  })
})

describe("the budget left for --max-budget-usd", () => {
  it("is the least left under any cost cap covering the new agent, its own included; none without cost caps", () => {
    const t = task([
      agent("a", "orchestrator", 1, "running", { cost: 1 }, { budget: { max_cost_usd: 3 } }),
      agent("a1", "a", 2, "running", { cost: 0.5 })
    ], { max_cost_usd: 10 })
    expect(remainingUsd(t, "a1")).toBeCloseTo(1.5)
    expect(remainingUsd(t, "a1", 0.25)).toBeCloseTo(0.25)
    expect(remainingUsd(t, "orchestrator")).toBeCloseTo(8.5)
    expect(remainingUsd(task([agent("a", "orchestrator", 1, "running")]), "a")).toBeUndefined()
  })
})

describe("what a spent budget stops", () => {
  it("every active agent under the spent cap, reservations included, deepest first; nothing else", () => {
    const targets = overBudgetTargets(tree({ a: 6000, a1: 2000, a11: 2500 }))
    expect(targets.map((t) => t.agentId)).toEqual(["a11", "a1", "a2", "a"])
    expect(targets[0]!.budgetStop).toEqual({ agent_id: "a", kind: "tokens", spent: 10_500, cap: 10_000 })
    expect(targets[0]!.reason).toBe(stopReason(targets[0]!.budgetStop))
    expect(targets[0]!.reason).toContain("10500 tokens spent of 10000")
  })

  it("nothing while every cap has room, or when what it covers has already ended", () => {
    expect(overBudgetTargets(tree({ a: 9999 }))).toEqual([])
    expect(overBudgetTargets(task([agent("x", "orchestrator", 1, "completed", { output: 99 })], { max_tokens: 10 })))
      .toEqual([])
  })

  it("the task's cap covers every active agent of the task", () => {
    const targets = overBudgetTargets(tree({ b1: 7000 }, { max_tokens: 7000 }))
    expect(targets.map((t) => t.agentId).sort()).toEqual(["a", "a1", "a11", "a2", "b"])
    expect(targets.every((t) => t.budgetStop.agent_id === undefined)).toBe(true)
  })

  it("a cycle in a hand-edited registry is walked once", () => {
    const cyclic = task([
      agent("p", "q", 1, "running", { output: 50 }, { budget: { max_tokens: 10 } }),
      agent("q", "p", 2, "running", { output: 50 })
    ])
    expect(overBudgetTargets(cyclic).map((t) => t.agentId)).toEqual(["q", "p"])
  })
})

describe("spend for people", () => {
  it("sums tokens and cost, marks estimates, and groups by task, engine and agent type", () => {
    const t = task([
      agent("x", "orchestrator", 1, "completed", { output: 100, cost: 1 }, { engine: "claude" }),
      agent("y", "orchestrator", 1, "running", { output: 50, cost: 0.5 }, { engine: "claude" }),
      agent("z", "orchestrator", 1, "reserved", {}, { engine: "codex" })
    ], { max_cost_usd: 5 })
    expect(spendOf(t.agents)).toMatchObject({ total_tokens: 150, cost_usd: 1.5, estimated: true })
    const report = usageReport([t])
    expect(report.rows).toEqual([
      expect.objectContaining({ task_id: T, engine: "claude", agent_type: "w", agents: 2, total_tokens: 150 })
    ])
    expect(report.tasks[0]).toMatchObject({ cost_usd: 1.5, max_cost_usd: 5 })
    expect(report.total.cost_usd).toBe(1.5)
  })
})

describe("usage-limit walls", () => {
  const NOW = Date.parse(AT)
  const line = (fields: Record<string, unknown>) =>
    JSON.stringify({
      engine: "claude",
      host: "h1",
      resets_at: "2026-12-03T09:00:30.000Z",
      reason: "rate",
      at: AT,
      ...fields
    })

  it("the latest reset of an engine on this host; other engines and hosts unaffected; past walls down", () => {
    const walls = parseWalls([
      line({}),
      line({ resets_at: "2026-12-03T09:01:00.000Z" }),
      line({ engine: "codex", resets_at: "2026-12-03T08:59:00.000Z" }),
      line({ host: "h2" })
    ].join("\n"))
    expect(wallFor(walls, "claude", "h1", NOW)?.resetsAtMs).toBe(Date.parse("2026-12-03T09:01:00.000Z"))
    expect(wallFor(walls, "codex", "h1", NOW)).toBeUndefined()
    expect(wallFor(walls, "gemini", "h1", NOW)).toBeUndefined()
    expect(wallFor(walls, "claude", "h3", NOW)).toBeUndefined()
  })

  it("lines that do not decode wall nothing, and no wall reaches past seven days from its report", () => {
    const walls = parseWalls([
      "{not json",
      line({ engine: "rm -rf" }),
      line({ resets_at: "tomorrow" }),
      line({ reason: "x".repeat(501) }),
      line({ resets_at: "2036-01-01T00:00:00.000Z" })
    ].join("\n"))
    expect(walls).toHaveLength(1)
    expect(wallFor(walls, "claude", "h1", NOW)?.resetsAtMs).toBe(NOW + SEVEN_DAYS_MS)
  })
})
