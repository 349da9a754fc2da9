/**
 * Stored-record fixtures for the unit tier: a task registry as spawnkit writes one, with the defaults of a new task,
 * so each test states only what it is about.
 */

/** The JSON of a task registry holding `agents` (limits at their defaults, nothing spawned yet), with `extra` on top. */
export const taskJson = (
  task: { readonly task_id: string; readonly created_at: string; readonly workspace: string },
  agents: ReadonlyArray<unknown>,
  extra: Record<string, unknown> = {}
) => ({
  task_id: task.task_id,
  task_description: "fixture",
  created_at: task.created_at,
  workspace: task.workspace,
  status: "INITIALIZED",
  agents,
  agent_hierarchy: {},
  max_agents: 45,
  max_depth: 5,
  max_concurrent: 20,
  total_spawned: 0,
  active_count: 0,
  ...extra
})
