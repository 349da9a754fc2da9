/**
 * The list_tasks tool: tasks with their counts, the active ones or every task a page at a time.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { parseTaskId } from "../../domain/Decode.js"
import { TaskId } from "../../domain/Ids.js"
import type { TaskRegistry } from "../../domain/Task.js"
import { Registry } from "../../registry/Registry.js"
import { listTasks, MAX_PAGE } from "../../tasks/Tasks.js"
import { CallerIdentity } from "../Caller.js"
import { define, described, reads, UnreadableTaskResult } from "./Tool.js"

/** One task of a listing. */
const TaskSummary = Schema.Struct({
  task_id: Schema.String,
  description: Schema.String,
  created_at: Schema.String,
  status: Schema.String,
  active_count: Schema.Int,
  total_spawned: Schema.Int,
  max_concurrent: Schema.Int
})

const summary = (t: TaskRegistry): typeof TaskSummary.Type => ({
  task_id: t.task_id,
  description: t.task_description,
  created_at: t.created_at,
  status: t.status,
  active_count: t.active_count,
  total_spawned: t.total_spawned,
  max_concurrent: t.max_concurrent
})

/** list_tasks */
export const ListTasks = define({
  name: "list_tasks",
  title: "List tasks",
  description:
    "Tasks with their description, status and agent counts: by default those with agents running or starting " +
    "(scope active); scope all pages through every task, oldest first (pass next_cursor back as cursor). An agent " +
    "sees only its own task. Tasks whose registry cannot be read are listed under unreadable.",
  input: Schema.Struct({
    scope: Schema.optionalKey(
      described(
        Schema.Literals(["active", "all"]),
        "active (default): tasks holding slots; all: every task, a page at a time"
      )
    ),
    cursor: Schema.optionalKey(described(TaskId, "next_cursor of the previous page (a task id)")),
    limit: Schema.optionalKey(
      described(
        Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: MAX_PAGE })),
        `Tasks per page (1-${MAX_PAGE}, default 100)`
      )
    )
  }),
  output: Schema.Struct({
    tasks: Schema.Array(TaskSummary),
    unreadable: Schema.Array(UnreadableTaskResult),
    /** The cursor of the next page; absent on the last one. */
    next_cursor: Schema.optionalKey(Schema.String)
  }),
  hints: reads,
  run: (input) =>
    Effect.gen(function*() {
      const caller = yield* CallerIdentity
      if (caller._tag === "Agent") {
        const task = yield* (yield* Registry).read(yield* parseTaskId(caller.taskId))
        return { tasks: [summary(task)], unreadable: [] }
      }
      const page = yield* listTasks({
        scope: input.scope ?? "active",
        limit: input.limit ?? 100,
        ...(input.cursor !== undefined ? { after: input.cursor } : {})
      })
      return {
        tasks: page.tasks.map(summary),
        unreadable: page.unreadable,
        ...(page.next !== undefined ? { next_cursor: page.next } : {})
      }
    })
})
