/**
 * What was spent, summed from the records for people and tools: per task against its caps, and per task, engine and
 * agent type (`spawnkit usage`). Pure.
 */
import type { Agent } from "../domain/Agent.js"
import type { TaskRegistry } from "../domain/Task.js"
import { type Tokens, totalTokens } from "../domain/Usage.js"

/** Spend summed over some agents. */
export interface Spend {
  readonly tokens: Tokens
  readonly total_tokens: number
  readonly cost_usd: number
  /** Whether any part of the cost is an estimate (tokens × the price table) rather than the engine's own figure. */
  readonly estimated: boolean
}

const ZERO: Tokens = { input: 0, output: 0, cache_creation: 0, cache_read: 0 }

/** Whether an agent's cost is an estimate: it spent, and its engine reported no cost at least as high. */
export const isEstimate = (agent: Agent): boolean =>
  agent.usage !== undefined && agent.usage.cost_usd > 0 &&
  (agent.usage.reported_cost_usd === undefined || agent.usage.reported_cost_usd < agent.usage.cost_usd)

/** The spend of some agents. */
export const spendOf = (agents: ReadonlyArray<Agent>): Spend => {
  let tokens = ZERO
  let cost = 0
  let estimated = false
  for (const a of agents) {
    if (a.usage === undefined) continue
    const t = a.usage.tokens
    tokens = {
      input: tokens.input + t.input,
      output: tokens.output + t.output,
      cache_creation: tokens.cache_creation + t.cache_creation,
      cache_read: tokens.cache_read + t.cache_read
    }
    cost += a.usage.cost_usd
    estimated ||= isEstimate(a)
  }
  return { tokens, total_tokens: totalTokens(tokens), cost_usd: cost, estimated }
}

/** A task's spend against its caps. */
export interface TaskSpend extends Spend {
  readonly task_id: string
  readonly max_cost_usd?: number
  readonly max_tokens?: number
}

/** A task's spend against its caps. */
export const taskSpend = (task: TaskRegistry): TaskSpend => ({
  task_id: task.task_id,
  ...spendOf(task.agents),
  ...(task.max_cost_usd !== undefined ? { max_cost_usd: task.max_cost_usd } : {}),
  ...(task.max_tokens !== undefined ? { max_tokens: task.max_tokens } : {})
})

/** One row of the usage report: the agents of one task, engine and agent type. */
export interface UsageRow extends Spend {
  readonly task_id: string
  readonly engine: string
  readonly agent_type: string
  readonly agents: number
}

/** The usage report: rows by task, engine and agent type, each task's spend against its caps, and the total. */
export interface UsageReport {
  readonly rows: ReadonlyArray<UsageRow>
  readonly tasks: ReadonlyArray<TaskSpend>
  readonly total: Spend
}

/** The usage report of some tasks. */
export const usageReport = (tasks: ReadonlyArray<TaskRegistry>): UsageReport => {
  const rows: Array<UsageRow> = []
  for (const task of tasks) {
    const groups = new Map<string, Array<Agent>>()
    for (const a of task.agents) {
      if (a.status === "reserved") continue
      const key = `${a.engine ?? "unknown"}\u0000${a.type}`
      const group = groups.get(key)
      if (group === undefined) groups.set(key, [a])
      else group.push(a)
    }
    for (const [key, agents] of [...groups].sort(([a], [b]) => a.localeCompare(b))) {
      const [engine = "unknown", agentType = ""] = key.split("\u0000")
      rows.push({ task_id: task.task_id, engine, agent_type: agentType, agents: agents.length, ...spendOf(agents) })
    }
  }
  return {
    rows,
    tasks: tasks.map(taskSpend),
    total: spendOf(tasks.flatMap((t) => t.agents))
  }
}

/** A USD amount for people: cents, or four decimals below a cent. */
export const formatUsd = (usd: number): string => `$${usd >= 0.01 || usd === 0 ? usd.toFixed(2) : usd.toFixed(4)}`

/** A spend for people: tokens and cost, `~` marking an estimate. */
export const formatSpend = (spend: Pick<Spend, "total_tokens" | "cost_usd" | "estimated">): string =>
  `${spend.total_tokens.toLocaleString("en-US")} tokens  ${spend.estimated ? "~" : ""}${formatUsd(spend.cost_usd)}`

/** Caps for people: `$5.00 / 40,000 tokens`; empty when there is none. */
export const formatCaps = (caps: { readonly max_cost_usd?: number; readonly max_tokens?: number }): string =>
  [
    ...(caps.max_cost_usd !== undefined ? [formatUsd(caps.max_cost_usd)] : []),
    ...(caps.max_tokens !== undefined ? [`${caps.max_tokens.toLocaleString("en-US")} tokens`] : [])
  ].join(" / ")
