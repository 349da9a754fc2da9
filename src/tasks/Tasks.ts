/**
 * Tasks: creating one, listing them, reading one's state, and setting aside one whose registry cannot be read.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Schema from "effect/Schema"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import { invalidInput, parseTaskId } from "../domain/Decode.js"
import { InvalidInput, ioFailure, RegistryIoError, TaskNotCorrupt } from "../domain/Errors.js"
import { SessionName, TaskId } from "../domain/Ids.js"
import { CreateTaskRequest } from "../domain/SpawnRequest.js"
import { type TaskRegistry } from "../domain/Task.js"
import { Git } from "../host/Git.js"
import { Tmux } from "../host/Tmux.js"
import { promptsDir, taskDir } from "../host/Workspace.js"
import { stopSession } from "../lifecycle/Kill.js"
import { Registry } from "../registry/Registry.js"
import { agentIdOfFile } from "../spawn/AgentFiles.js"
import { isoOf } from "../spawn/AgentRecords.js"
import { SpawnkitConfig } from "../SpawnkitConfig.js"

const decodeCreate = Schema.decodeUnknownEffect(CreateTaskRequest)

const pad = (n: number, width = 2) => String(n).padStart(width, "0")

/** A new task id: `TASK-YYYYMMDD-HHMMSS-<8 hex>` (UTC), as the older orchestrator made them. */
export const newTaskId = Effect.gen(function*() {
  const d = new Date(yield* Clock.currentTimeMillis)
  const suffix = (yield* Random.nextIntBetween(0, 0xffffffff)).toString(16).padStart(8, "0")
  const date = `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}`
  const time = `${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}`
  return `TASK-${date}-${time}-${suffix}` as TaskId
})

/**
 * A task whose agents get worktrees needs a working directory in a git repository with a commit, not a bare one, and
 * a base ref that names a commit in it: refused before the task exists, so nothing is created.
 */
const checkRepository = (dir: string | undefined, baseRef: string | undefined) =>
  Effect.gen(function*() {
    if (dir === undefined) {
      return yield* new InvalidInput({
        field: "working_directory",
        reason: "isolation worktree needs the task's working directory, in a git repository; give one"
      })
    }
    const git = yield* Git
    const repo = yield* git.repository(dir)
    if (baseRef !== undefined) yield* git.resolveCommit(repo.root, baseRef)
  })

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
  if (request.isolation === "worktree") yield* checkRepository(request.working_directory, request.base_ref)
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
    ...(request.max_cost_usd !== undefined ? { max_cost_usd: request.max_cost_usd } : {}),
    ...(request.max_tokens !== undefined ? { max_tokens: request.max_tokens } : {}),
    ...(request.isolation !== undefined ? { isolation: request.isolation } : {}),
    ...(request.sandbox !== undefined ? { sandbox: request.sandbox } : {}),
    ...(request.base_ref !== undefined ? { base_ref: request.base_ref } : {}),
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
  const options = yield* Schema.decodeUnknownEffect(ListTasksOptions)(input, {
    errors: "all",
    onExcessProperty: "error"
  })
    .pipe(Effect.mapError(invalidInput))
  const registry = yield* Registry
  return yield* registry.list(options)
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
