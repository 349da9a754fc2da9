/**
 * Tasks: creating one, reading their state, and killing an agent.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Schema from "effect/Schema"
import { type Agent, isActiveStatus } from "../domain/Agent.js"
import { AgentNotFound, InvalidInput } from "../domain/Errors.js"
import { AgentId, SessionName, TaskId } from "../domain/Ids.js"
import { CreateTaskRequest } from "../domain/SpawnRequest.js"
import { type TaskRegistry } from "../domain/Task.js"
import { Registry } from "../registry/Registry.js"
import { taskDir } from "../registry/Workspace.js"
import { Tmux } from "../sessions/Tmux.js"
import { SpawnkitConfig } from "../SpawnkitConfig.js"
import { removeAgentFiles } from "./AgentFiles.js"
import { isoOf, replaceAgent } from "./AgentRecords.js"
import { invalidInput } from "./Spawner.js"

const decodeCreate = Schema.decodeUnknownEffect(CreateTaskRequest)
const decodeTaskId = Schema.decodeUnknownEffect(TaskId)
const decodeAgentId = Schema.decodeUnknownEffect(AgentId)

const pad = (n: number, width = 2) => String(n).padStart(width, "0")

/** A new task id: `TASK-YYYYMMDD-HHMMSS-<8 hex>` (UTC), as the older orchestrator made them. */
export const newTaskId = Effect.gen(function*() {
  const d = new Date(yield* Clock.currentTimeMillis)
  const suffix = (yield* Random.nextIntBetween(0, 0xffffffff)).toString(16).padStart(8, "0")
  const date = `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}`
  const time = `${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}`
  return `TASK-${date}-${time}-${suffix}` as TaskId
})

/** Validate a task id given by a caller. */
export const parseTaskId = (value: unknown) => decodeTaskId(value).pipe(Effect.mapError(invalidInput))

/** Validate an agent id given by a caller. */
export const parseAgentId = (value: unknown) => decodeAgentId(value).pipe(Effect.mapError(invalidInput))

/** Create a task with its limits (defaults from configuration) and return its registry. */
export const createTask = Effect.fn("Tasks.createTask")(function*(input: unknown) {
  const request = yield* decodeCreate(input, { errors: "all", onExcessProperty: "error" }).pipe(
    Effect.mapError(invalidInput)
  )
  const config = yield* SpawnkitConfig
  const registry = yield* Registry
  const fs = yield* FileSystem.FileSystem
  if (request.working_directory !== undefined) {
    const dir = request.working_directory
    const info = yield* fs.stat(dir).pipe(Effect.option)
    if (Option.isNone(info) || info.value.type !== "Directory") {
      return yield* new InvalidInput({ field: "working_directory", reason: `${dir} is not an existing directory` })
    }
  }
  const taskId = yield* newTaskId
  const now = isoOf(yield* Clock.currentTimeMillis)
  const d = config.taskDefaults
  const task: TaskRegistry = {
    task_id: taskId,
    task_description: request.description,
    created_at: now,
    workspace: taskDir(config.home, taskId),
    status: "INITIALIZED",
    priority: request.priority ?? "P2",
    ...(request.engine !== undefined ? { engine: request.engine } : {}),
    ...(request.working_directory !== undefined ? { working_directory: request.working_directory } : {}),
    ...(request.task_context !== undefined ? { task_context: request.task_context } : {}),
    agents: [],
    agent_hierarchy: {},
    max_agents: request.max_agents ?? d.max_agents,
    max_depth: request.max_depth ?? d.max_depth,
    max_concurrent: request.max_concurrent ?? d.max_concurrent,
    max_children_per_parent: request.max_children_per_parent ?? d.max_children_per_parent,
    max_spawns_per_minute: request.max_spawns_per_minute ?? d.max_spawns_per_minute,
    total_spawned: 0,
    active_count: 0
  }
  yield* registry.createTask(task)
  return yield* registry.read(taskId)
})

/** The registries of one task (when `taskId` is given) or of every task. */
export const status = Effect.fn("Tasks.status")(function*(taskId?: string) {
  const registry = yield* Registry
  if (taskId === undefined) return yield* registry.list
  return [yield* registry.read(yield* parseTaskId(taskId))]
})

/** Signal a process group; a group that is already gone (ESRCH) is what the caller wanted. */
export const signalGroup = (pgid: number, signal: NodeJS.Signals) =>
  // Security: -0 and -1 would signal our own group or every process we may signal.
  pgid <= 1 ? Effect.die(new Error(`refusing to signal process group ${pgid}`)) : Effect.try({ try: () => process.kill(-pgid, signal), catch: (e) => e as NodeJS.ErrnoException }).pipe(
    Effect.catchIf((e) => e.code === "ESRCH", () => Effect.succeed(true)),
    Effect.orDie,
    Effect.asVoid
  )

/** What `kill` did. */
export interface KillResult {
  readonly agent_id: string
  readonly task_id: string
  readonly status: string
  /** False when the agent had already ended: kill is idempotent. */
  readonly killed: boolean
}

/**
 * Kill an agent: signal its process group, remove its session, mark it `killed`, delete its prompt file; its log
 * stays. Killing an agent that already ended changes nothing.
 */
export const kill = Effect.fn("Tasks.kill")(function*(taskIdInput: string, agentIdInput: string, reason?: string) {
  const taskId = yield* parseTaskId(taskIdInput)
  const agentId = yield* parseAgentId(agentIdInput)
  const registry = yield* Registry
  const tmux = yield* Tmux
  const config = yield* SpawnkitConfig
  const task = yield* registry.read(taskId)
  const agent = task.agents.find((a) => a.id === agentId)
  if (agent === undefined) return yield* new AgentNotFound({ taskId, agentId })
  if (!isActiveStatus(agent.status)) {
    return { agent_id: agentId, task_id: taskId, status: agent.status, killed: false } satisfies KillResult
  }
  if (agent.status === "reserved") {
    return yield* new InvalidInput({
      field: "agent_id",
      reason: `agent ${agentId} is still starting; its spawn either commits or rolls back within moments, retry then`
    })
  }
  const session = yield* Schema.decodeUnknownEffect(SessionName)(agent.tmux_session).pipe(Effect.mapError(invalidInput))
  const pane = yield* tmux.paneState(session)
  if (Option.isSome(pane) && !pane.value.dead) {
    // The pane's process leads its own process group; signalling the group reaches the agent's children too.
    yield* signalGroup(pane.value.panePid, "SIGTERM")
  }
  yield* tmux.killSession(session)
  const now = isoOf(yield* Clock.currentTimeMillis)
  const final = yield* registry.update(taskId, (tx) => {
    const current = tx.task.agents.find((a) => a.id === agentId)
    if (current === undefined || !isActiveStatus(current.status)) return Effect.succeed({ result: current })
    const killed: Agent = {
      ...current,
      status: "killed",
      completed_at: now,
      last_update: now,
      reason: reason ?? "killed on request"
    }
    return Effect.succeed({ result: killed, next: replaceAgent(tx.task, killed) })
  })
  yield* removeAgentFiles(config.home, taskId, agentId)
  return { agent_id: agentId, task_id: taskId, status: final?.status ?? "killed", killed: true } satisfies KillResult
})
