/**
 * Budgets, as pure decisions over one task's records: what is spent under each cap, whether a spawn may start under
 * them, and which agents a spent budget stops. No I/O, no clock.
 *
 * A cap is the task's (`max_cost_usd`, `max_tokens`: every agent of the task) or an agent's (`budget`: that agent and
 * every agent below it). Spend is derived from the records, never kept as a counter: each agent's metered usage
 * (`usage.cost_usd`, and its tokens of every kind), summed over the agents the cap covers, ended ones included.
 *
 * Invariant: a budget is spent when its spend has reached its cap. Then admission refuses every spawn under it, and
 * every active agent under it (reservations too: their spawns are cancelled) is stopped, deepest first.
 */
import { type Agent, type BudgetStop, isActiveStatus } from "../domain/Agent.js"
import { BudgetExceeded, type BudgetKind } from "../domain/Errors.js"
import { type AgentId, ORCHESTRATOR } from "../domain/Ids.js"
import type { TaskRegistry } from "../domain/Task.js"
import { totalTokens } from "../domain/Usage.js"

/** One cap: the task's (no `agentId`) or an agent's subtree's. */
export interface Cap {
  readonly agentId?: AgentId
  readonly kind: BudgetKind
  readonly cap: number
}

/** What one agent has spent of a kind. */
export const spentBy = (agent: Agent, kind: BudgetKind): number =>
  agent.usage === undefined ? 0 : kind === "cost_usd" ? agent.usage.cost_usd : totalTokens(agent.usage.tokens)

/** The task's own caps. */
export const taskCaps = (task: TaskRegistry): ReadonlyArray<Cap> => [
  ...(task.max_cost_usd !== undefined ? [{ kind: "cost_usd" as const, cap: task.max_cost_usd }] : []),
  ...(task.max_tokens !== undefined ? [{ kind: "tokens" as const, cap: task.max_tokens }] : [])
]

/** An agent's caps (on its subtree). */
export const agentCaps = (agent: Agent): ReadonlyArray<Cap> => [
  ...(agent.budget?.max_cost_usd !== undefined
    ? [{ agentId: agent.id, kind: "cost_usd" as const, cap: agent.budget.max_cost_usd }]
    : []),
  ...(agent.budget?.max_tokens !== undefined
    ? [{ agentId: agent.id, kind: "tokens" as const, cap: agent.budget.max_tokens }]
    : [])
]

/** The agents of a task, with their children, for walks of subtrees. */
export interface Tree {
  readonly byId: ReadonlyMap<string, Agent>
  readonly children: ReadonlyMap<string, ReadonlyArray<Agent>>
}

/** Index a task's records as a tree. */
export const treeOf = (agents: ReadonlyArray<Agent>): Tree => {
  const byId = new Map<string, Agent>()
  const children = new Map<string, Array<Agent>>()
  for (const a of agents) {
    byId.set(a.id, a)
    const siblings = children.get(a.parent)
    if (siblings === undefined) children.set(a.parent, [a])
    else siblings.push(a)
  }
  return { byId, children }
}

/** An agent and every agent below it (each once, whatever cycles a hand-edited file holds). */
export const subtree = (tree: Tree, rootId: string): ReadonlyArray<Agent> => {
  const root = tree.byId.get(rootId)
  if (root === undefined) return []
  const seen = new Set<string>([rootId])
  const out: Array<Agent> = [root]
  for (let i = 0; i < out.length; i++) {
    for (const child of tree.children.get(out[i]!.id) ?? []) {
      if (seen.has(child.id)) continue
      seen.add(child.id)
      out.push(child)
    }
  }
  return out
}

/** The agents a cap covers. */
const covered = (task: TaskRegistry, tree: Tree, cap: Cap): ReadonlyArray<Agent> =>
  cap.agentId === undefined ? task.agents : subtree(tree, cap.agentId)

/** What is spent under a cap. */
export const spentUnder = (agents: ReadonlyArray<Agent>, kind: BudgetKind): number =>
  agents.reduce((sum, a) => sum + spentBy(a, kind), 0)

/** The caps covering a new child of `parent`: the task's, then those of the parent and each agent above it. */
export const capsAbove = (task: TaskRegistry, tree: Tree, parent: string): ReadonlyArray<Cap> => {
  const caps: Array<Cap> = [...taskCaps(task)]
  const seen = new Set<string>()
  let at = parent
  while (at !== ORCHESTRATOR && !seen.has(at)) {
    seen.add(at)
    const agent = tree.byId.get(at)
    if (agent === undefined) break
    caps.push(...agentCaps(agent))
    at = agent.parent
  }
  return caps
}

/** Whether any cap is set in the task (most tasks have none: nothing to walk). */
export const hasBudgets = (task: TaskRegistry): boolean =>
  task.max_cost_usd !== undefined || task.max_tokens !== undefined || task.agents.some((a) => a.budget !== undefined)

/** Admission: a spawn under `parent` is refused when a cap covering it is spent. */
export const budgetRefusal = (task: TaskRegistry, parent: string): BudgetExceeded | undefined => {
  if (!hasBudgets(task)) return undefined
  const tree = treeOf(task.agents)
  for (const cap of capsAbove(task, tree, parent)) {
    const spent = spentUnder(covered(task, tree, cap), cap.kind)
    if (spent >= cap.cap) {
      return new BudgetExceeded({
        taskId: task.task_id,
        ...(cap.agentId !== undefined ? { agentId: cap.agentId } : {}),
        kind: cap.kind,
        spent,
        cap: cap.cap
      })
    }
  }
  return undefined
}

/**
 * What a new child of `parent` may still spend in USD: the least that is left under any cost cap covering it (its
 * own included); undefined when no cost cap covers it. Given to Claude Code as `--max-budget-usd`.
 */
export const remainingUsd = (task: TaskRegistry, parent: string, own?: number): number | undefined => {
  const tree = treeOf(task.agents)
  let left = own
  for (const cap of capsAbove(task, tree, parent)) {
    if (cap.kind !== "cost_usd") continue
    const rest = Math.max(0, cap.cap - spentUnder(covered(task, tree, cap), "cost_usd"))
    left = left === undefined ? rest : Math.min(left, rest)
  }
  return left
}

/** An agent a spent budget stops, why, and the figures. */
export interface BudgetTarget {
  readonly agentId: AgentId
  readonly reason: string
  readonly budgetStop: BudgetStop
}

/** A reason a person can read, with the figures. */
export const stopReason = (stop: BudgetStop): string => {
  const whose = stop.agent_id === undefined ? "the task's budget" : `the budget of ${stop.agent_id}'s subtree`
  const figures = stop.kind === "cost_usd"
    ? `$${stop.spent.toFixed(4)} spent of $${stop.cap}`
    : `${stop.spent} tokens spent of ${stop.cap}`
  return `over budget: ${whose} is spent (${figures})`
}

/**
 * The agents spent budgets stop: every active agent (reservations included) under a spent cap, deepest first, each
 * once (with the first spent cap covering it). Empty when no spent cap covers an active agent.
 */
export const overBudgetTargets = (task: TaskRegistry): ReadonlyArray<BudgetTarget> => {
  if (!hasBudgets(task)) return []
  const tree = treeOf(task.agents)
  const caps = [...taskCaps(task), ...task.agents.flatMap(agentCaps)]
  const chosen = new Map<string, { readonly agent: Agent; readonly stop: BudgetStop }>()
  for (const cap of caps) {
    const agents = covered(task, tree, cap)
    if (!agents.some((a) => isActiveStatus(a.status) && !chosen.has(a.id))) continue
    const spent = spentUnder(agents, cap.kind)
    if (spent < cap.cap) continue
    const stop: BudgetStop = {
      ...(cap.agentId !== undefined ? { agent_id: cap.agentId } : {}),
      kind: cap.kind,
      spent,
      cap: cap.cap
    }
    for (const agent of agents) {
      if (isActiveStatus(agent.status) && !chosen.has(agent.id)) chosen.set(agent.id, { agent, stop })
    }
  }
  return [...chosen.values()]
    .sort((a, b) => b.agent.depth - a.agent.depth)
    .map(({ agent, stop }) => ({ agentId: agent.id, reason: stopReason(stop), budgetStop: stop }))
}
