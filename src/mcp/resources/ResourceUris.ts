/**
 * The URIs of spawnkit's MCP resources: `tasks://list`, `task://{task_id}/status` and
 * `task://{task_id}/progress-timeline`. Parsing is pure; a URI that is not one of these, or names no valid task id,
 * is InvalidInput on `uri`, so nothing is read for it.
 */
import * as Effect from "effect/Effect"
import { parseTaskId } from "../../domain/Decode.js"
import { InvalidInput } from "../../domain/Errors.js"
import type { AgentEvent } from "../../domain/Event.js"
import type { TaskId } from "../../domain/Ids.js"

/** The listing of tasks. */
export const TASKS_LIST_URI = "tasks://list"

/** What a task resource shows. */
export type TaskView = "status" | "progress-timeline"

/** A resource, once its URI is parsed. */
export type ResourceRef =
  | { readonly _tag: "TasksList" }
  | { readonly _tag: "Task"; readonly taskId: TaskId; readonly view: TaskView }

/** The URI of a task's resource. */
export const taskUri = (taskId: string, view: TaskView) => `task://${taskId}/${view}`

/** The URI templates (RFC 6570) of the task resources. */
export const TASK_STATUS_TEMPLATE = "task://{task_id}/status"
/** @see TASK_STATUS_TEMPLATE */
export const TASK_TIMELINE_TEMPLATE = "task://{task_id}/progress-timeline"

const TASK_URI = /^task:\/\/([^/?#]+)\/(status|progress-timeline)$/

const unknownUri = (uri: string) =>
  new InvalidInput({
    field: "uri",
    reason: `${JSON.stringify(uri.slice(0, 200))} is no spawnkit resource; the resources are ${TASKS_LIST_URI}, ` +
      `${TASK_STATUS_TEMPLATE} and ${TASK_TIMELINE_TEMPLATE} (resources/list and resources/templates/list show them)`
  })

/** Parse a resource URI; the task id in it is validated like any caller's task id. */
export const parseResourceUri = (uri: string): Effect.Effect<ResourceRef, InvalidInput> => {
  if (uri === TASKS_LIST_URI) return Effect.succeed({ _tag: "TasksList" })
  const match = TASK_URI.exec(uri)
  if (match === null) return Effect.fail(unknownUri(uri))
  return parseTaskId(match[1]!, "uri").pipe(
    Effect.map((taskId): ResourceRef => ({ _tag: "Task", taskId, view: match[2] as TaskView }))
  )
}

/** The URIs whose contents an event changes: its task's status and timeline, and the listing of tasks. */
export const urisChangedBy = (event: AgentEvent): ReadonlyArray<string> => [
  taskUri(event.task_id, "status"),
  taskUri(event.task_id, "progress-timeline"),
  TASKS_LIST_URI
]
