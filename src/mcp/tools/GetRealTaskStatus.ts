/**
 * The get_real_task_status tool: a task's registry (agents without their secrets' digests), counts and limits, and the
 * latest reports of its most recently updated agents.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Struct from "effect/Struct"
import { Agent } from "../../domain/Agent.js"
import type { AgentId, TaskId } from "../../domain/Ids.js"
import { TaskRegistry } from "../../domain/Task.js"
import { findingsPath, progressPath } from "../../host/Workspace.js"
import { readJsonLines } from "../../reports/Reports.js"
import { SpawnkitConfig } from "../../SpawnkitConfig.js"
import { define, described, reads, readTaskFor, SpendResult, spendResultOf, taskIdField } from "./Tool.js"

/** Agents whose recent reports a status call includes (the most recently updated). */
const MAX_REPORTED_AGENTS = 50

/** A task as a status call shows it: every stored field, agents without `secret_sha256`, and recent reports. */
const TaskStatus = TaskRegistry.mapFields((fields) => ({
  ...fields,
  agents: Schema.Array(Agent.mapFields(Struct.omit(["secret_sha256"]))),
  /** What the task's agents spent together, against its caps. */
  spend: SpendResult,
  recent_reports: Schema.Record(
    Schema.String,
    Schema.Struct({ progress: Schema.Array(Schema.Unknown), findings: Schema.Array(Schema.Unknown) })
  )
}))

/** get_real_task_status */
export const GetRealTaskStatus = define({
  name: "get_real_task_status",
  title: "Task status",
  description:
    "The task's registry: every agent with its status, parent, depth, progress, exit and metered usage (tokens, " +
    "cost in USD); counts, limits, and spend against the task's budget; and " +
    `the latest progress reports and findings of its ${MAX_REPORTED_AGENTS} most recently updated agents.`,
  input: Schema.Struct({
    task_id: taskIdField,
    recent: Schema.optionalKey(
      described(
        Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 100 })),
        "Progress entries and findings to include per agent, 0 to 100 (default 3; 0: none)"
      )
    )
  }),
  output: TaskStatus,
  hints: reads,
  run: (input) =>
    Effect.gen(function*() {
      const { task } = yield* readTaskFor(input.task_id)
      const config = yield* SpawnkitConfig
      const recent = input.recent ?? 3
      // A status call reads a bounded amount whatever the task's size: the tails of the report logs of the most
      // recently updated agents only.
      const reported = recent === 0
        ? []
        : [...task.agents]
          .sort((a, b) => (b.last_update ?? b.started_at).localeCompare(a.last_update ?? a.started_at))
          .slice(0, MAX_REPORTED_AGENTS)
      const reports = yield* Effect.forEach(reported, (a) =>
        Effect.all({
          progress: readJsonLines(progressPath(config.home, task.task_id as TaskId, a.id as AgentId), recent),
          findings: readJsonLines(findingsPath(config.home, task.task_id as TaskId, a.id as AgentId), recent)
        }).pipe(Effect.map((r) => [a.id, r] as const)))
      return {
        ...task,
        agents: task.agents.map((a) => {
          const { secret_sha256: _secret, ...visible } = a
          return visible
        }),
        spend: spendResultOf(task),
        recent_reports: Object.fromEntries(reports.filter(([, r]) => r.progress.length + r.findings.length > 0))
      }
    })
})
