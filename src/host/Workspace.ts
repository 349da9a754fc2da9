/**
 * The on-disk layout of a spawnkit home, compatible with the older orchestrator:
 * `<home>/TASK-…/AGENT_REGISTRY.json`, with `prompts/` and `logs/` beside it.
 */
import * as NodePath from "node:path"
import type { AgentId, TaskId } from "../domain/Ids.js"

/** Name of a task's registry file. */
export const REGISTRY_FILE = "AGENT_REGISTRY.json"

/** The single cross-process lock file of a home; one lock for every registry change, so no lock order exists. */
export const lockPath = (home: string) => NodePath.join(home, ".spawnkit.lock")

/** Markers of the tasks that may hold slots (see FileRegistry): the global count reads only these tasks. */
export const activeMarkersDir = (home: string) => NodePath.join(home, ".spawnkit-active")

/** Where `spawnkit task quarantine` keeps registries that could not be decoded, byte for byte. */
export const quarantineDir = (home: string) => NodePath.join(home, ".spawnkit-quarantine")

/**
 * Where agent runners drop their exit files (`<task id>.<agent id>`, holding the exit status) for the supervisor to
 * notice, and where each running supervisor keeps its marker `.supervisor.<pid>`. See src/supervisor/ExitFiles.ts.
 */
export const exitsDir = (home: string) => NodePath.join(home, ".spawnkit-exits")

/**
 * An agent's exit file, `<exits dir>/<task id>.<agent id>`: ids hold no `.`, so the name splits back into the two
 * unambiguously.
 */
export const exitFilePath = (home: string, taskId: TaskId, agentId: AgentId) =>
  NodePath.join(exitsDir(home), `${taskId}.${agentId}`)

/** A task's directory. */
export const taskDir = (home: string, taskId: TaskId) => NodePath.join(home, taskId)

/** A task's registry file. */
export const registryPath = (home: string, taskId: TaskId) => NodePath.join(home, taskId, REGISTRY_FILE)

/** A task's prompts directory: its agents' prompt and MCP config files, while they are active. */
export const promptsDir = (home: string, taskId: TaskId) => NodePath.join(home, taskId, "prompts")

/** An agent's prompt file (0600). */
export const promptPath = (home: string, taskId: TaskId, agentId: AgentId) =>
  NodePath.join(home, taskId, "prompts", `${agentId}.prompt`)

/** An agent's output log. */
export const logPath = (home: string, taskId: TaskId, agentId: AgentId) =>
  NodePath.join(home, taskId, "logs", `${agentId}.log`)

/**
 * An agent's secret, handed to its runner in a file (0600) the runner reads and deletes before the agent starts, so
 * the secret is never in tmux's environment nor on a command line.
 */
export const secretPath = (home: string, taskId: TaskId, agentId: AgentId) =>
  NodePath.join(home, taskId, "prompts", `${agentId}.secret`)

/** An agent's MCP client configuration (0600; holds its secret), for engines that take one. */
export const mcpConfigPath = (home: string, taskId: TaskId, agentId: AgentId) =>
  NodePath.join(home, taskId, "prompts", `${agentId}.mcp.json`)

/** A task's progress log of one agent (JSON lines). */
export const progressPath = (home: string, taskId: TaskId, agentId: AgentId) =>
  NodePath.join(home, taskId, "progress", `${agentId}_progress.jsonl`)

/** A task's findings log of one agent (JSON lines). */
export const findingsPath = (home: string, taskId: TaskId, agentId: AgentId) =>
  NodePath.join(home, taskId, "findings", `${agentId}_findings.jsonl`)

/**
 * An agent's git worktree: `<worktrees root>/<task id>/<worktree id>` (see SpawnkitConfig.worktreesRoot). Derived from
 * validated ids only, never from a stored path.
 */
export const worktreePath = (root: string, taskId: TaskId, worktreeId: AgentId) =>
  NodePath.join(root, taskId, worktreeId)
