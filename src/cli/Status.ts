/**
 * `spawnkit status`: what it shows of tasks and their agent trees, as JSON or as text. The command prints it once;
 * `status --watch` (StatusWatch.ts) draws it again after every change.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import { listTasks, status } from "../tasks/Tasks.js"
import { renderTask, renderUnreadable } from "./Output.js"
import { workOf } from "./Worktrees.js"

/** What `spawnkit status` was asked (its flags, but --json and --watch: how it is shown, not what). */
export interface StatusFlags {
  /** Only this task. */
  readonly task?: string
  /** Every task, finished ones included (else tasks with agents running or starting). */
  readonly all: boolean
  /** Only tasks after this id (a page's next cursor). */
  readonly after?: string
  /** At most this many tasks. */
  readonly limit?: number
}

const page = (f: StatusFlags) =>
  listTasks({
    scope: f.all ? "all" : "active",
    ...(f.after !== undefined ? { after: f.after } : {}),
    ...(f.limit !== undefined ? { limit: f.limit } : {})
  })

/** What `status --json` shows: the task's registry with --task, else a page of tasks (with its next cursor). */
export const statusDocument = (f: StatusFlags) =>
  Effect.gen(function*() {
    return f.task !== undefined ? yield* status(f.task) : yield* page(f)
  })

/** What `status` shows as text: the task's tree with --task, else each task's tree and the next page's command. */
export const statusText = (f: StatusFlags) =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    if (f.task !== undefined) {
      const task = yield* status(f.task)
      return renderTask(task, now, yield* workOf(task))
    }
    const listed = yield* page(f)
    const rendered: Array<string> = []
    for (const t of listed.tasks) rendered.push(renderTask(t, now, yield* workOf(t)))
    const shown = listed.tasks.length === 0
      ? f.all ? "no tasks" : "no task has agents running or starting (spawnkit status --all shows every task)"
      : rendered.join("\n\n")
    const more = listed.next === undefined
      ? []
      : [`more: spawnkit status${f.all ? " --all" : ""} --after ${listed.next}`]
    return [shown, ...renderUnreadable(listed.unreadable), ...more].join("\n\n")
  })
