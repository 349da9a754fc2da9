/**
 * The task registry file, `<home>/TASK-…/AGENT_REGISTRY.json`, compatible with the older orchestrator's layout.
 */
import * as Schema from "effect/Schema"
import { Agent, CostCap, isActiveStatus, Isolation, QueueEntry, SandboxKind, Timestamp, TokenCap } from "./Agent.js"
import { BaseRef } from "./GitRef.js"
import { AbsolutePath, AgentId, TaskId } from "./Ids.js"

/** Limits of one task; every one is enforced by admission. */
export interface TaskLimits {
  readonly max_concurrent: number
  readonly max_agents: number
  readonly max_depth: number
  readonly max_children_per_parent: number
  readonly max_spawns_per_minute: number
}

const Limit = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))

/**
 * Where a stored file must lie: below a directory of this task (`…/<task id>/…`). Not necessarily the workspace: with
 * a shared PostgreSQL registry each host keeps its agents' files in its own home.
 */
const isInTaskDirectory = (taskId: string, path: string) => path.includes(`/${taskId}/`)

/**
 * Checks across the records of a task that one record's schema cannot make: the workspace is the task's own
 * directory, agent ids are unique, and every tracked file lies in a directory of the task.
 */
const consistentTask = Schema.makeFilter((task: {
  readonly task_id: string
  readonly workspace: string
  readonly agents: ReadonlyArray<Agent>
}) => {
  if (!task.workspace.replace(/\/$/, "").endsWith(`/${task.task_id}`)) {
    return `Expected the workspace to be the task's own directory (ending in /${task.task_id})`
  }
  const seen = new Set<string>()
  for (const agent of task.agents) {
    if (seen.has(agent.id)) return `Expected unique agent ids; ${agent.id} appears twice`
    seen.add(agent.id)
    for (const [key, path] of Object.entries(agent.tracked_files ?? {})) {
      if (path !== undefined && !isInTaskDirectory(task.task_id, path)) {
        return `Expected tracked_files.${key} of agent ${agent.id} in a directory of task ${task.task_id}, got ${path}`
      }
    }
  }
  return true
})

/**
 * The whole task registry, validated as untrusted input on every read (agents can write it). `total_spawned`,
 * `active_count`, `completed_count` and `agent_hierarchy` are derived and rewritten on every write.
 */
export const TaskRegistry = Schema.Struct({
  task_id: TaskId,
  task_description: Schema.String,
  created_at: Timestamp,
  workspace: AbsolutePath,
  status: Schema.String,
  priority: Schema.optionalKey(Schema.String),
  engine: Schema.optionalKey(Schema.String),
  /** Where the task's agents work (the caller's project directory); the task directory when absent. */
  working_directory: Schema.optionalKey(AbsolutePath),
  agents: Schema.Array(Agent),
  agent_hierarchy: Schema.Record(AgentId, Schema.Array(AgentId)),
  max_agents: Limit,
  max_depth: Limit,
  max_concurrent: Limit,
  max_children_per_parent: Schema.optionalKey(Limit),
  max_spawns_per_minute: Schema.optionalKey(Limit),
  /** Wall-clock limit of each agent, in seconds (enforced by the reconciler); none when absent. */
  timeout_seconds: Schema.optionalKey(Limit),
  /** An agent with no new output for this many seconds is stopped as `stalled`; none when absent. */
  stall_timeout_seconds: Schema.optionalKey(Limit),
  /** What all of the task's agents together may spend, in USD (metered); none when absent. */
  max_cost_usd: Schema.optionalKey(CostCap),
  /** What all of the task's agents together may spend, in tokens of every kind; none when absent. */
  max_tokens: Schema.optionalKey(TokenCap),
  /** How its agents are confined by default: `none` when absent. */
  sandbox: Schema.optionalKey(SandboxKind),
  /** Where its agents work by default: `none` (its working directory) when absent. */
  isolation: Schema.optionalKey(Isolation),
  /** With isolation worktree: what its agents' branches start from by default; the repository's HEAD when absent. */
  base_ref: Schema.optionalKey(BaseRef),
  total_spawned: Schema.Number,
  active_count: Schema.Number,
  completed_count: Schema.optionalKey(Schema.Number),
  /** Spawns waiting for a slot, oldest first (see QueueEntry). */
  queue: Schema.optionalKey(Schema.Array(QueueEntry)),
  /** The sequence number of the newest event this task's changes made (the file journal checks its commits by it). */
  event_seq: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))),
  task_context: Schema.optionalKey(Schema.Unknown)
}).check(consistentTask)
/** @see TaskRegistry */
export type TaskRegistry = typeof TaskRegistry.Type

/** Default limits, as the older orchestrator had them: 45 agents, 20 concurrent, depth 5. */
export const DEFAULT_LIMITS: TaskLimits = {
  max_concurrent: 20,
  max_agents: 45,
  max_depth: 5,
  max_children_per_parent: 20,
  max_spawns_per_minute: 600
}

/** The limits of a task, with defaults for the ones an older registry lacks. */
export const limitsOf = (task: TaskRegistry): TaskLimits => ({
  max_concurrent: task.max_concurrent,
  max_agents: task.max_agents,
  max_depth: task.max_depth,
  max_children_per_parent: task.max_children_per_parent ?? DEFAULT_LIMITS.max_children_per_parent,
  max_spawns_per_minute: task.max_spawns_per_minute ?? DEFAULT_LIMITS.max_spawns_per_minute
})

/** Number of agents holding a slot (reservations included). */
export const activeCount = (agents: ReadonlyArray<Agent>): number =>
  agents.reduce((n, a) => (isActiveStatus(a.status) ? n + 1 : n), 0)

/**
 * Invariant: the stored counts and hierarchy are rewritten from the records on every write, never kept as counters.
 */
export const withDerivedFields = (task: TaskRegistry): TaskRegistry => {
  const hierarchy: Record<AgentId, Array<AgentId>> = {}
  let committed = 0
  let completed = 0
  for (const agent of task.agents) {
    if (agent.status === "reserved") continue
    committed++
    if (agent.status === "completed") completed++
    ;(hierarchy[agent.parent] ??= []).push(agent.id)
  }
  return {
    ...task,
    agent_hierarchy: hierarchy,
    total_spawned: committed,
    active_count: activeCount(task.agents),
    completed_count: completed
  }
}
