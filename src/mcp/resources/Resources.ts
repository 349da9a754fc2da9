/**
 * spawnkit's MCP resources: `tasks://list` (what list_tasks shows), `task://{task_id}/status` (what
 * get_real_task_status shows) and `task://{task_id}/progress-timeline` (see Timeline). Reads are Effects run in the
 * tools' runtime, with the caller's rights: an agent's server sees its own task's resources only.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import type { AgentEvent } from "../../domain/Event.js"
import type { AgentId, TaskId } from "../../domain/Ids.js"
import type { TaskRegistry } from "../../domain/Task.js"
import { Events } from "../../events/Events.js"
import { findingsPath, progressPath } from "../../host/Workspace.js"
import { Registry } from "../../registry/Registry.js"
import { readJsonLines } from "../../reports/Reports.js"
import { SpawnkitConfig } from "../../SpawnkitConfig.js"
import { CallerIdentity, checkTask } from "../Caller.js"
import { GetRealTaskStatus } from "../tools/GetRealTaskStatus.js"
import { ListTasks } from "../tools/ListTasks.js"
import {
  parseResourceUri,
  type ResourceRef,
  TASK_STATUS_TEMPLATE,
  TASK_TIMELINE_TEMPLATE,
  TASKS_LIST_URI,
  taskUri
} from "./ResourceUris.js"
import { buildTimeline, MAX_TIMELINE_ENTRIES } from "./Timeline.js"

const JSON_TYPE = "application/json"

/** Agents whose report logs a timeline reads (the most recently updated), so a read costs a bounded amount. */
const MAX_TIMELINE_AGENTS = 50

const LIST_DESCRIPTION =
  "Tasks with agents running or starting, with their description, status and agent counts (as list_tasks shows " +
  "them); an agent sees only its own task."
const STATUS_DESCRIPTION =
  "The task's registry: every agent with its status, parent, depth, progress and exit; counts, limits and the " +
  "latest reports (as get_real_task_status shows it)."
const TIMELINE_DESCRIPTION =
  "The task's agents' state changes, progress reports and findings in time order (the latest " +
  `${MAX_TIMELINE_ENTRIES}).`

/** A resource as resources/list shows it. */
export interface ListedResource {
  readonly uri: string
  readonly name: string
  readonly title: string
  readonly description: string
  readonly mimeType: string
}

/** The task resources' URI templates, as resources/templates/list shows them. */
export const resourceTemplates = [
  {
    uriTemplate: TASK_STATUS_TEMPLATE,
    name: "task-status",
    title: "Task status",
    description: STATUS_DESCRIPTION,
    mimeType: JSON_TYPE
  },
  {
    uriTemplate: TASK_TIMELINE_TEMPLATE,
    name: "task-progress-timeline",
    title: "Task progress timeline",
    description: TIMELINE_DESCRIPTION,
    mimeType: JSON_TYPE
  }
]

const taskResources = (taskId: string, description: string): ReadonlyArray<ListedResource> => [
  {
    uri: taskUri(taskId, "status"),
    name: `${taskId}-status`,
    title: `Status of ${taskId}: ${description.slice(0, 80)}`,
    description: STATUS_DESCRIPTION,
    mimeType: JSON_TYPE
  },
  {
    uri: taskUri(taskId, "progress-timeline"),
    name: `${taskId}-progress-timeline`,
    title: `Progress timeline of ${taskId}`,
    description: TIMELINE_DESCRIPTION,
    mimeType: JSON_TYPE
  }
]

/** The listing of tasks, and each listed task's status and timeline (an agent: its own task's only). */
export const listResources = Effect.gen(function*() {
  const listing = yield* ListTasks.run({})
  const list: ListedResource = {
    uri: TASKS_LIST_URI,
    name: "tasks",
    title: "Tasks",
    description: LIST_DESCRIPTION,
    mimeType: JSON_TYPE
  }
  return [list, ...listing.tasks.flatMap((t) => taskResources(t.task_id, t.description))]
})

/** The latest report lines of the task's most recently updated agents. */
const readReports = (taskId: TaskId, agents: TaskRegistry["agents"]) =>
  Effect.gen(function*() {
    const { home } = yield* SpawnkitConfig
    const recent = [...agents]
      .sort((a, b) => (b.last_update ?? b.started_at).localeCompare(a.last_update ?? a.started_at))
      .slice(0, MAX_TIMELINE_AGENTS)
    const perAgent = yield* Effect.forEach(recent, (a) =>
      Effect.all({
        progress: readJsonLines(progressPath(home, taskId, a.id as AgentId), MAX_TIMELINE_ENTRIES),
        findings: readJsonLines(findingsPath(home, taskId, a.id as AgentId), MAX_TIMELINE_ENTRIES)
      }))
    return { progress: perAgent.flatMap((r) => r.progress), findings: perAgent.flatMap((r) => r.findings) }
  })

/** The latest events of a task in the journal, oldest first. */
const readEvents = (taskId: TaskId) =>
  Effect.gen(function*() {
    const events = yield* Events
    const latest: Array<AgentEvent> = []
    yield* events.stream({ taskId }).pipe(
      Stream.runForEach((event) =>
        Effect.sync(() => {
          latest.push(event)
          if (latest.length > MAX_TIMELINE_ENTRIES) latest.shift()
        })
      )
    )
    return latest
  })

/** A task's timeline, for a caller that may see the task. */
const readTimeline = (taskId: TaskId) =>
  Effect.gen(function*() {
    yield* checkTask(yield* CallerIdentity, taskId)
    const task = yield* (yield* Registry).read(taskId)
    const [events, reports] = yield* Effect.all([readEvents(taskId), readReports(taskId, task.agents)], {
      concurrency: 2
    })
    return buildTimeline(taskId, events, reports)
  })

// A value that does not encode through its own tool's schema is a defect, never a caller's error.
const encodedThrough = <O>(schema: Schema.Codec<O, unknown>) => (value: O) =>
  Effect.orDie(Schema.encodeUnknownEffect(schema)(value, { errors: "all" }))

/** The contents of a parsed resource, as JSON-ready data. */
const contentsOf = (ref: ResourceRef) => {
  if (ref._tag === "TasksList") return ListTasks.run({}).pipe(Effect.flatMap(encodedThrough(ListTasks.output)))
  if (ref.view === "status") {
    return GetRealTaskStatus.run({ task_id: ref.taskId }).pipe(
      Effect.flatMap(encodedThrough(GetRealTaskStatus.output))
    )
  }
  return readTimeline(ref.taskId)
}

/** Read a resource: its one JSON text content. A bad or unknown URI, or a task the caller may not see, fails. */
export const readResource = (uri: string) =>
  Effect.gen(function*() {
    const ref = yield* parseResourceUri(uri)
    const data = yield* contentsOf(ref)
    return { contents: [{ uri, mimeType: JSON_TYPE, text: JSON.stringify(data, null, 2) }] }
  })

/**
 * Check that a resource exists and the caller may see it, as a subscription requires: the URI parses and, for a task
 * resource, the task is the caller's (an agent's) and its registry exists.
 */
export const checkSubscribable = (uri: string) =>
  Effect.gen(function*() {
    const ref = yield* parseResourceUri(uri)
    if (ref._tag === "TasksList") return ref
    yield* checkTask(yield* CallerIdentity, ref.taskId)
    yield* (yield* Registry).read(ref.taskId)
    return ref
  })
