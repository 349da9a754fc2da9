/**
 * The get_global_status tool: slots held across all tasks against the global limit, and who is calling.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { activeCount } from "../../domain/Task.js"
import { SpawnkitConfig } from "../../SpawnkitConfig.js"
import { listTasks } from "../../tasks/Tasks.js"
import { CallerIdentity } from "../Caller.js"
import { define, NoArguments, reads, UnreadableTaskResult } from "./Tool.js"

/** Who is calling: the orchestrator, or an agent of a task. */
const CallerResult = Schema.Union([
  Schema.Struct({ _tag: Schema.Literal("Orchestrator") }),
  Schema.Struct({ _tag: Schema.Literal("Agent"), taskId: Schema.String, agentId: Schema.String })
])

/** get_global_status */
export const GetGlobalStatus = define({
  name: "get_global_status",
  title: "Global status",
  description:
    "Agents holding a slot across all tasks against the global limit, the tasks they are in, and who is calling " +
    "(orchestrator or agent). Tasks whose registry cannot be read are listed under unreadable.",
  input: NoArguments,
  output: Schema.Struct({
    caller: CallerResult,
    active_tasks: Schema.Int,
    active_agents: Schema.Int,
    max_concurrent_agents: Schema.Int,
    unreadable: Schema.Array(UnreadableTaskResult)
  }),
  hints: reads,
  run: () =>
    Effect.gen(function*() {
      const caller = yield* CallerIdentity
      const config = yield* SpawnkitConfig
      const page = yield* listTasks({ scope: "active" })
      return {
        caller,
        active_tasks: page.tasks.length,
        active_agents: page.tasks.reduce((n, t) => n + activeCount(t.agents), 0),
        max_concurrent_agents: config.globalMaxConcurrent,
        unreadable: page.unreadable
      }
    })
})
