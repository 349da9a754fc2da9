/**
 * Pure builders and helpers over agent records, shared by the spawn and lifecycle steps: a new agent's id and
 * reservation record, a spawn's result, and the record edits transactions make. No I/O.
 */
import { createHash } from "node:crypto"
import type { Agent, Engine, WorktreeRecord } from "../domain/Agent.js"
import { type AgentId, sessionNameOf, type TaskId } from "../domain/Ids.js"
import type { SpawnRequest, SpawnResult } from "../domain/SpawnRequest.js"
import type { TaskRegistry } from "../domain/Task.js"
import type { OutputFormat } from "../domain/Usage.js"
import { logPath, promptPath } from "../host/Workspace.js"

/** The task with one agent record replaced (by id). */
export const replaceAgent = (task: TaskRegistry, agent: Agent): TaskRegistry => ({
  ...task,
  agents: task.agents.map((a) => (a.id === agent.id ? agent : a))
})

/** The task without one agent record. */
export const removeAgent = (task: TaskRegistry, agentId: string): TaskRegistry => ({
  ...task,
  agents: task.agents.filter((a) => a.id !== agentId)
})

/** The record without its reservation (it has become a committed agent). */
export const withoutReservation = (agent: Agent): Agent => {
  const { reservation: _reservation, ...rest } = agent
  return rest
}

/** Current time as the registry writes it. */
export const isoOf = (millis: number) => new Date(millis).toISOString()

/** Lines of output kept with an agent that ended. */
export const EXIT_TAIL_LINES = 20

/** The sha256 of a text, hex. */
export const sha256 = (text: string) => createHash("sha256").update(text).digest("hex")

/** An agent id: `<type>-<HHMMSS UTC>-<8 hex>`. */
export const agentIdFor = (type: string, nowMs: number, suffix: number) => {
  const d = new Date(nowMs)
  const hhmmss = [d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()].map((n) => String(n).padStart(2, "0")).join("")
  return `${type}-${hhmmss}-${suffix.toString(16).padStart(8, "0")}` as AgentId
}

/** An agent id no record of the task holds: the suffix is counted up (wrapping at 32 bits) past every id taken. */
export const freshAgentId = (task: TaskRegistry, type: string, nowMs: number, suffix: number): AgentId => {
  const taken = new Set<string>(task.agents.map((a) => a.id))
  let agentId = agentIdFor(type, nowMs, suffix)
  for (let n = 1; taken.has(agentId); n++) agentId = agentIdFor(type, nowMs, (suffix + n) >>> 0)
  return agentId
}

/** What a reservation's record is made of: the request, the admission's verdict and the values drawn for it. */
export interface NewAgent {
  readonly agentId: AgentId
  readonly request: SpawnRequest
  readonly parent: AgentId
  readonly depth: number
  readonly engine: Engine
  /** The task as the reserving transaction sees it (its watchdog limits are the defaults). */
  readonly task: TaskRegistry
  readonly home: string
  readonly hostId: string
  /** The process that reserves (the spawn's owner until it commits or rolls back). */
  readonly ownerPid: number
  readonly nowMs: number
  /** The sha256 of the whole prompt (admission compares it for an idempotency key). */
  readonly promptSha256: string
  readonly secretSha256: string
  /** A session id for Claude Code's `--session-id`; kept only for the claude engine. */
  readonly sessionUuid: string
  /** Which output format its log follows (metering). */
  readonly outputFormat: OutputFormat
  /** Its worktree (isolation worktree): its own, or the one of the agent it resumes. */
  readonly worktree?: WorktreeRecord | undefined
  /** A resume: the agent it resumes and that agent's conversation id. */
  readonly resume?: { readonly from: AgentId; readonly sessionId: string } | undefined
}

const optionalLimit = <K extends string>(key: K, value: number | undefined) =>
  (value === undefined ? {} : { [key]: value }) as { readonly [P in K]?: number }

/**
 * Its conversation id: a resumed agent continues the one it resumes; Claude Code, Gemini CLI and the custom engine get
 * a pre-assigned one (`--session-id`, `{session_id}`); Codex makes its own (its thread id, read from its output).
 */
const sessionFields = (n: NewAgent) => {
  const id = n.resume?.sessionId ?? (n.engine !== "codex" ? n.sessionUuid : undefined)
  if (id === undefined) return {}
  const isUuid = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(id)
  return { session_id: id, ...(n.engine === "claude" && isUuid ? { claude_session_id: id } : {}) }
}

/** The record of a new reservation: status `reserved`, owned by the reserving process until its spawn commits. */
export const reservedAgent = (n: NewAgent): Agent => {
  const now = isoOf(n.nowMs)
  const { request, task } = n
  return {
    id: n.agentId,
    type: request.agentType,
    tmux_session: sessionNameOf(n.agentId),
    parent: n.parent,
    depth: n.depth,
    status: "reserved",
    started_at: now,
    last_update: now,
    progress: 0,
    prompt: request.prompt.slice(0, PROMPT_PREVIEW_CHARS),
    prompt_sha256: n.promptSha256,
    engine: n.engine,
    ...(request.idempotencyKey !== undefined ? { idempotency_key: request.idempotencyKey } : {}),
    reservation: { owner_pid: n.ownerPid, owner_host: n.hostId, reserved_at: now },
    host: n.hostId,
    secret_sha256: n.secretSha256,
    ...sessionFields(n),
    ...(n.worktree !== undefined ? { worktree: n.worktree } : {}),
    ...((request.sandbox ?? task.sandbox) === "bwrap" ? { sandbox: "bwrap" as const } : {}),
    ...(n.resume !== undefined ? { resumed_from: n.resume.from } : {}),
    ...optionalLimit("timeout_seconds", request.timeoutSeconds ?? task.timeout_seconds),
    ...optionalLimit("stall_timeout_seconds", request.stallTimeoutSeconds ?? task.stall_timeout_seconds),
    ...(request.maxCostUsd !== undefined || request.maxTokens !== undefined
      ? {
        budget: {
          ...(request.maxCostUsd !== undefined ? { max_cost_usd: request.maxCostUsd } : {}),
          ...(request.maxTokens !== undefined ? { max_tokens: request.maxTokens } : {})
        }
      }
      : {}),
    output_format: n.outputFormat,
    tracked_files: {
      prompt_file: promptPath(n.home, task.task_id, n.agentId),
      log_file: logPath(n.home, task.task_id, n.agentId)
    }
  }
}

/** Characters of the prompt kept on the record (the whole prompt is in the prompt file). */
export const PROMPT_PREVIEW_CHARS = 200

/** What a spawn answers for an agent: a new one (`existing: false`) or the one its idempotency key named. */
export const spawnResultOf = (taskId: TaskId, agent: Agent, existing: boolean): SpawnResult => ({
  agent_id: agent.id,
  task_id: taskId,
  tmux_session: agent.tmux_session,
  status: agent.status,
  depth: agent.depth,
  parent: agent.parent,
  existing
})
