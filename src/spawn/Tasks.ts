/**
 * Tasks: creating one, reading their state, and killing an agent.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import { type Agent, isLiveStatus } from "../domain/Agent.js"
import { AgentNotFound, InvalidInput } from "../domain/Errors.js"
import { AgentId, SessionName, TaskId } from "../domain/Ids.js"
import { CreateTaskRequest } from "../domain/SpawnRequest.js"
import { type TaskRegistry } from "../domain/Task.js"
import { groupHasLiveMember } from "../internal/processes.js"
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

/** Validate a task id given by a caller; an error names `field`. */
export const parseTaskId = (value: unknown, field = "task_id") =>
  decodeTaskId(value).pipe(Effect.mapError((e) => invalidInput(e, field)))

/** Validate an agent id given by a caller; an error names `field`. */
export const parseAgentId = (value: unknown, field = "agent_id") =>
  decodeAgentId(value).pipe(Effect.mapError((e) => invalidInput(e, field)))

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
    ...(request.timeout_seconds !== undefined ? { timeout_seconds: request.timeout_seconds } : {}),
    ...(request.stall_timeout_seconds !== undefined ? { stall_timeout_seconds: request.stall_timeout_seconds } : {}),
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
  /** Descendants killed with it (with `cascade`), deepest first. */
  readonly cascaded: ReadonlyArray<string>
}

/**
 * Stop an agent's whole process tree: SIGTERM to the pane's process group, up to the grace period for it to go,
 * then SIGKILL; then remove its session.
 */
export const stopSession = Effect.fn("Tasks.stopSession")(function*(session: SessionName) {
  const tmux = yield* Tmux
  const config = yield* SpawnkitConfig
  const pane = yield* tmux.paneState(session)
  if (Option.isSome(pane) && !pane.value.dead) {
    // The pane's process leads its own process group; signalling the group reaches the agent's children too.
    const pgid = pane.value.panePid
    yield* signalGroup(pgid, "SIGTERM")
    const gone = yield* groupHasLiveMember(pgid).pipe(
      Effect.repeat({ schedule: Schedule.spaced("50 millis"), while: (alive) => alive }),
      Effect.timeoutOption(Duration.millis(config.killGraceMs))
    )
    if (Option.isNone(gone)) yield* signalGroup(pgid, "SIGKILL")
  }
  yield* tmux.killSession(session)
})

/**
 * End live agents: record them with a terminal status and reason first, then stop each one's process group and
 * session and delete its prompt and MCP config (its log stays). Recorded first, stopped second: the exit hook then
 * finds the agents already ended and leaves them so; a stop that fails half-way leaves a session no record owns,
 * which the reconciler removes. Returns the records as written.
 */
export const endAgents = Effect.fn("Tasks.endAgents")(function*(
  taskId: TaskId,
  agentIds: ReadonlyArray<AgentId>,
  status: "killed" | "timed_out" | "stalled",
  reasonFor: (agentId: string) => string
) {
  const registry = yield* Registry
  const config = yield* SpawnkitConfig
  const now = isoOf(yield* Clock.currentTimeMillis)
  const ids = new Set<string>(agentIds)
  const ended = yield* registry.update(taskId, (tx) => {
    let next = tx.task
    const written: Array<Agent> = []
    for (const current of tx.task.agents) {
      if (!ids.has(current.id) || !isLiveStatus(current.status)) continue
      const end: Agent = { ...current, status, completed_at: now, last_update: now, reason: reasonFor(current.id) }
      next = replaceAgent(next, end)
      written.push(end)
    }
    return Effect.succeed({ result: written, next })
  })
  for (const agent of ended) {
    const session = yield* Schema.decodeUnknownEffect(SessionName)(agent.tmux_session).pipe(
      Effect.mapError((e) => invalidInput(e, "tmux_session"))
    )
    yield* stopSession(session)
    yield* removeAgentFiles(config.home, taskId, agent.id as AgentId)
  }
  return ended
})

/** The agent and, with `cascade`, its active descendants, deepest first. */
const killTargets = (agents: ReadonlyArray<Agent>, root: Agent, cascade: boolean): ReadonlyArray<Agent> => {
  if (!cascade) return [root]
  const below = (id: string): Array<Agent> =>
    agents.filter((a) => a.parent === id).flatMap((child) => [...below(child.id), child])
  return [...below(root.id).filter((a) => isLiveStatus(a.status)), root]
}

/**
 * Kill an agent (and with `cascade` every live agent below it): mark it `killed`, stop its process group (SIGTERM,
 * grace, SIGKILL), remove its session, delete its prompt and MCP config; its log stays. Killing an agent that
 * already ended changes nothing.
 */
export const kill = Effect.fn("Tasks.kill")(function*(
  taskIdInput: string,
  agentIdInput: string,
  reason?: string,
  options: { readonly cascade?: boolean } = {}
) {
  const taskId = yield* parseTaskId(taskIdInput)
  const agentId = yield* parseAgentId(agentIdInput)
  const registry = yield* Registry
  const task = yield* registry.read(taskId)
  const agent = task.agents.find((a) => a.id === agentId)
  if (agent === undefined) return yield* new AgentNotFound({ taskId, agentId })
  if (agent.status === "reserved") {
    return yield* new InvalidInput({
      field: "agent_id",
      reason: `agent ${agentId} is still starting; its spawn either commits or rolls back within moments, retry then`
    })
  }
  const targets = isLiveStatus(agent.status)
    ? killTargets(task.agents, agent, options.cascade ?? false)
    : killTargets(task.agents, agent, options.cascade ?? false).filter((a) => a.id !== agentId)
  if (targets.length === 0) {
    return { agent_id: agentId, task_id: taskId, status: agent.status, killed: false, cascaded: [] } satisfies KillResult
  }
  const ended = yield* endAgents(
    taskId,
    targets.map((t) => t.id as AgentId),
    "killed",
    (id) => (id === agentId ? reason ?? "killed on request" : `parent ${agentId} was killed (cascade)`)
  )
  const final = ended.find((a) => a.id === agentId)
  return {
    agent_id: agentId,
    task_id: taskId,
    status: final?.status ?? agent.status,
    killed: isLiveStatus(agent.status),
    cascaded: targets.filter((t) => t.id !== agentId).map((t) => t.id)
  } satisfies KillResult
})
