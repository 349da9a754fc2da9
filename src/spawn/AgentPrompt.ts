/**
 * The prompt an agent spawned through the MCP tools receives: its identity, its mission, the task's context, how to
 * report back through spawnkit's tools, and the depth and limits it must respect. The template is plain text with
 * `{{name}}` placeholders; SPAWNKIT_PROMPT_TEMPLATE names a file that replaces the default.
 */
import type { TaskRegistry } from "../domain/Task.js"
import { limitsOf } from "../domain/Task.js"

/** The built-in template. */
export const DEFAULT_PROMPT_TEMPLATE = `You are agent {{agent_id}} (type: {{agent_type}}), working on task {{task_id}}.
You were spawned by {{parent}} and sit at depth {{depth}} of the agent tree (max depth {{max_depth}}).

## Your mission
{{mission}}

## The task
{{task_description}}
{{task_context}}
## Reporting back (spawnkit MCP tools; they act only as you)
- update_agent_progress: task_id "{{task_id}}", agent_id "{{agent_id}}", status (working | blocked | completed),
  a short message and progress 0-100. Report when you start, at milestones, when blocked, and when done.
- report_agent_finding: task_id "{{task_id}}", agent_id "{{agent_id}}", finding_type (issue | solution | insight |
  recommendation), severity, message, optional data.
- spawn_child_agent: parent_agent_id "{{agent_id}}", only when a separate agent really helps; {{children_rule}}
- Reporting "completed" does not stop you: your work is recorded as finished when your process exits.

## Limits
- At most {{max_concurrent}} agents of this task run at once, {{max_agents}} in its lifetime.
- Each agent may have at most {{max_children_per_parent}} active children.
`

/** Values a template may use. */
export interface PromptValues {
  readonly agentId: string
  readonly agentType: string
  readonly parent: string
  readonly depth: number
  readonly mission: string
  readonly task: TaskRegistry
}

const contextBlock = (task: TaskRegistry) => {
  const context = task.task_context
  if (context === undefined || context === null || typeof context !== "object") return ""
  const lines = Object.entries(context as Record<string, unknown>)
    .filter(([, v]) => v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0) && v !== "")
    .map(([k, v]) =>
      `- ${k.replaceAll("_", " ")}: ${
        Array.isArray(v) ? v.map(String).join("; ") : typeof v === "string" ? v : JSON.stringify(v)
      }`
    )
  return lines.length === 0 ? "" : `\nContext:\n${lines.join("\n")}\n`
}

/** Fill a template. Unknown placeholders stay as they are; values are inserted once, never re-expanded. */
export const renderPrompt = (template: string, v: PromptValues): string => {
  const limits = limitsOf(v.task)
  const values: Record<string, string> = {
    agent_id: v.agentId,
    agent_type: v.agentType,
    task_id: v.task.task_id,
    parent: v.parent,
    depth: String(v.depth),
    max_depth: String(limits.max_depth),
    max_concurrent: String(limits.max_concurrent),
    max_agents: String(limits.max_agents),
    max_children_per_parent: String(limits.max_children_per_parent),
    mission: v.mission,
    task_description: v.task.task_description,
    task_context: contextBlock(v.task),
    children_rule: v.depth >= limits.max_depth
      ? "you are at the maximum depth, so you cannot spawn children: do the work yourself."
      : `your children would be at depth ${v.depth + 1}.`
  }
  return template.replace(/\{\{([a-z_]+)\}\}/g, (whole, name: string) => values[name] ?? whole)
}
