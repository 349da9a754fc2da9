/**
 * Tasks: creating one, reading their state, and killing an agent.
 */
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import { type Agent, isLiveStatus } from "../domain/Agent.js"
import { AgentNotFound, InvalidInput, ioFailure, RegistryIoError, TaskNotCorrupt } from "../domain/Errors.js"
import { AgentId, SessionName, sessionNameOf, TaskId } from "../domain/Ids.js"
import { CreateTaskRequest } from "../domain/SpawnRequest.js"
import { type TaskRegistry } from "../domain/Task.js"
import { groupHasLiveMember } from "../internal/processes.js"
import { Registry } from "../registry/Registry.js"
import { promptsDir, taskDir } from "../registry/Workspace.js"
import { Tmux } from "../sessions/Tmux.js"
import { SpawnkitConfig } from "../SpawnkitConfig.js"
import { agentIdOfFile, removeAgentFiles } from "./AgentFiles.js"
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

/** One task's registry. */
export const status = Effect.fn("Tasks.status")(function*(taskId: string) {
  const registry = yield* Registry
  return yield* registry.read(yield* parseTaskId(taskId))
})

/** Largest page a listing returns. */
export const MAX_PAGE = 1000

/** How to page through tasks (`after` is the `next` cursor of the previous page). */
export const ListTasksOptions = Schema.Struct({
  scope: Schema.optionalKey(Schema.Literals(["active", "all"])),
  after: Schema.optionalKey(TaskId),
  limit: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: MAX_PAGE })))
})
/** @see ListTasksOptions */
export type ListTasksOptions = typeof ListTasksOptions.Encoded

/**
 * A page of tasks: by default those that may hold slots (active), else every task. Tasks whose registry cannot be
 * read are listed under `unreadable` (id, where, why; left untouched), never fail the listing.
 */
export const listTasks = Effect.fn("Tasks.listTasks")(function*(input: ListTasksOptions = {}) {
  const options = yield* Schema.decodeUnknownEffect(ListTasksOptions)(input, { errors: "all", onExcessProperty: "error" })
    .pipe(Effect.mapError(invalidInput))
  const registry = yield* Registry
  return yield* registry.list(options)
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
  /** `killed`; `cancelled` for a spawn in flight; else the status it had already ended with. */
  readonly status: string
  /** False when the agent had already ended (kill is idempotent), or another kill got there first. */
  readonly killed: boolean
  /** Descendants this kill ended or cancelled (with `cascade`), deepest first. */
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

/** One agent a transaction ends, and why. */
export interface EndTarget {
  readonly agentId: AgentId
  readonly reason: string
}

/** What ending agents did in its transaction: agents ended, and reservations (spawns in flight) cancelled. */
export interface Ended {
  readonly ended: ReadonlyArray<Agent>
  readonly cancelled: ReadonlyArray<Agent>
}

/**
 * End agents chosen inside one registry transaction, on the registry as it is there: `choose` names the targets;
 * each live one is recorded with `status` and its reason, and each reservation (a spawn in flight) is marked
 * cancelled, so its commit fails and its spawn rolls back. The prompt and MCP config files of the ended agents go in
 * the same transaction, before it commits (a task with no active record holds no agent files). Then each ended agent's
 * process group and session are stopped, in the order chosen. Recorded first, stopped second: the exit hook then
 * finds the agents already ended and leaves them so; a stop that fails half-way leaves a session no record owns, which
 * the reconciler removes.
 */
export const endAgents = Effect.fn("Tasks.endAgents")(function*(
  taskId: TaskId,
  status: "killed" | "timed_out" | "stalled",
  choose: (task: TaskRegistry) => ReadonlyArray<EndTarget>
) {
  const registry = yield* Registry
  const config = yield* SpawnkitConfig
  const now = isoOf(yield* Clock.currentTimeMillis)
  const result = yield* registry.update(taskId, (tx) =>
    Effect.gen(function*() {
      let next = tx.task
      const ended: Array<Agent> = []
      const cancelled: Array<Agent> = []
      for (const target of choose(tx.task)) {
        const current = next.agents.find((a) => a.id === target.agentId)
        if (current === undefined) continue
        if (current.status === "reserved" && current.cancelled === undefined) {
          const marked: Agent = { ...current, cancelled: { reason: target.reason, at: now } }
          next = replaceAgent(next, marked)
          cancelled.push(marked)
        } else if (isLiveStatus(current.status)) {
          yield* removeAgentFiles(config.home, taskId, current.id)
          const end: Agent = { ...current, status, completed_at: now, last_update: now, reason: target.reason }
          next = replaceAgent(next, end)
          ended.push(end)
        }
      }
      return ended.length + cancelled.length === 0
        ? { result: { ended, cancelled } }
        : { result: { ended, cancelled }, next }
    }))
  for (const agent of result.ended) yield* stopSession(sessionNameOf(agent.id))
  return result satisfies Ended
})

/**
 * The targets of a kill, on the registry as the transaction sees it: the agent and, with `cascade`, every agent
 * below it (reservations included: a child whose spawn is in flight is covered too), deepest first.
 */
export const killTargets = (
  agents: ReadonlyArray<Agent>,
  rootId: AgentId,
  cascade: boolean,
  reason: string
): ReadonlyArray<EndTarget> => {
  const children = new Map<string, Array<Agent>>()
  for (const a of agents) children.set(a.parent, [...(children.get(a.parent) ?? []), a])
  const seen = new Set<string>([rootId])
  const below = (id: string): Array<EndTarget> =>
    (children.get(id) ?? []).flatMap((child) => {
      // A record naming an ancestor as its child (a cycle in a hand-edited file) is visited once.
      if (seen.has(child.id)) return []
      seen.add(child.id)
      return [...below(child.id), { agentId: child.id, reason: `parent ${rootId} was killed (cascade)` }]
    })
  return [...(cascade ? below(rootId) : []), { agentId: rootId, reason }]
}

/**
 * Kill an agent (and with `cascade` every agent below it): mark it `killed`, stop its process group (SIGTERM, grace,
 * SIGKILL), remove its session, delete its prompt and MCP config; its log stays. A spawn still in flight is cancelled
 * instead (its commit fails and rolls back). Killing an agent that already ended changes nothing. The result comes
 * from the transaction that decided it: of two concurrent kills, one reports `killed: true`.
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
  const found = (yield* registry.read(taskId)).agents.some((a) => a.id === agentId)
  if (!found) return yield* new AgentNotFound({ taskId, agentId })
  let before: Agent | undefined
  let targets: ReadonlyArray<EndTarget> = []
  const { cancelled, ended } = yield* endAgents(taskId, "killed", (task) => {
    before = task.agents.find((a) => a.id === agentId)
    targets = before === undefined
      ? []
      : killTargets(task.agents, agentId, options.cascade ?? false, reason ?? "killed on request")
    return targets
  })
  if (before === undefined) return yield* new AgentNotFound({ taskId, agentId })
  const touched = new Set<string>([...ended, ...cancelled].map((a) => a.id))
  const rootEnded = ended.some((a) => a.id === agentId)
  const rootCancelled = cancelled.some((a) => a.id === agentId)
  return {
    agent_id: agentId,
    task_id: taskId,
    status: rootEnded ? "killed" : rootCancelled ? "cancelled" : before.status,
    killed: rootEnded || rootCancelled,
    cascaded: targets.map((t) => t.agentId).filter((id) => id !== agentId && touched.has(id))
  } satisfies KillResult
})

/** What setting a task aside did. */
export interface QuarantineResult {
  readonly task_id: string
  /** Where its registry is kept, byte for byte. */
  readonly kept_at: string
  /** Its sessions on this host that were stopped. */
  readonly stopped_sessions: ReadonlyArray<string>
  /** Its agents' prompt and MCP config files that were removed (its logs stay). */
  readonly removed_files: ReadonlyArray<string>
}

/**
 * Set aside a task whose registry cannot be decoded, the way out when it blocks admission (the global count cannot be
 * proven while it may hold slots): its sessions on this host are stopped and its agents' prompt and MCP config files
 * removed, then its registry leaves the registry, kept byte for byte, and its slots are freed. A task that decodes is
 * refused (kill its agents instead). Sessions come first, so a crash part-way leaves the task as it was, to be set
 * aside again.
 */
export const quarantineTask = Effect.fn("Tasks.quarantineTask")(function*(taskIdInput: string) {
  const taskId = yield* parseTaskId(taskIdInput)
  const registry = yield* Registry
  const tmux = yield* Tmux
  const config = yield* SpawnkitConfig
  const readable = yield* registry.read(taskId).pipe(
    Effect.as(true),
    Effect.catchTag("RegistryCorrupt", () => Effect.succeed(false))
  )
  if (readable) {
    return yield* new TaskNotCorrupt({ taskId })
  }
  const stopped: Array<string> = []
  for (const session of yield* tmux.listSessions) {
    const name = Schema.decodeUnknownOption(SessionName)(session.name)
    if (session.tags["spawnkit_home"] !== config.home || session.tags["spawnkit_task"] !== taskId) continue
    if (Option.isNone(name)) continue
    yield* stopSession(name.value)
    stopped.push(name.value)
  }
  const prompts = promptsDir(config.home, taskId)
  const removed = yield* Effect.try({
    try: () => {
      // Only agent files: anything else the task's agents left there (a directory included, which must not block
      // the way out) is not quarantine's to remove. readdir names hold no '/', so each path stays inside the task's
      // own prompts directory.
      const entries = Fs.existsSync(prompts) ? Fs.readdirSync(prompts, { withFileTypes: true }) : []
      const names = entries.filter((e) => !e.isDirectory() && agentIdOfFile(e.name) !== undefined).map((e) => e.name)
      for (const name of names) Fs.rmSync(NodePath.join(prompts, name), { force: true })
      return names.map((name) => NodePath.join(prompts, name))
    },
    catch: (e) => new RegistryIoError({ path: prompts, operation: "empty", ...ioFailure(e) })
  })
  const kept = yield* registry.quarantine(taskId)
  return { ...kept, stopped_sessions: stopped, removed_files: removed } satisfies QuarantineResult
})
