/**
 * The get_global_status tool: slots held across all tasks against the global limit, and who is calling.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { spendOf } from "../../budget/Spend.js"
import { activeCount } from "../../domain/Task.js"
import { UsageWalls } from "../../host/UsageWalls.js"
import { SpawnkitConfig } from "../../SpawnkitConfig.js"
import { listTasks } from "../../tasks/Tasks.js"
import { CallerIdentity } from "../Caller.js"
import { define, NoArguments, reads, SpendResult, UnreadableTaskResult } from "./Tool.js"

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
    "Agents holding a slot across all tasks against the global limit, the tasks they are in, what their agents " +
    "spent, engines behind a provider's usage limit (spawns on them refused until the reset), and who is calling " +
    "(orchestrator or agent). Tasks whose registry cannot be read are listed under unreadable.",
  input: NoArguments,
  output: Schema.Struct({
    caller: CallerResult,
    active_tasks: Schema.Int,
    active_agents: Schema.Int,
    max_concurrent_agents: Schema.Int,
    /** What the agents of the active tasks spent together. */
    spend: SpendResult,
    /** Engines of this host behind a provider's rate or usage limit: spawns on them are refused until the reset. */
    usage_limits: Schema.Array(Schema.Struct({
      engine: Schema.String,
      resets_at: Schema.String,
      retry_after_ms: Schema.Number,
      reason: Schema.String
    })),
    unreadable: Schema.Array(UnreadableTaskResult)
  }),
  hints: reads,
  run: () =>
    Effect.gen(function*() {
      const caller = yield* CallerIdentity
      const config = yield* SpawnkitConfig
      const page = yield* listTasks({ scope: "active" })
      const walls = yield* UsageWalls
      const nowMs = yield* Clock.currentTimeMillis
      return {
        caller,
        active_tasks: page.tasks.length,
        active_agents: page.tasks.reduce((n, t) => n + activeCount(t.agents), 0),
        max_concurrent_agents: config.globalMaxConcurrent,
        spend: spendOf(page.tasks.flatMap((t) => t.agents)),
        usage_limits: (yield* walls.active(nowMs)).map((w) => ({
          engine: w.engine,
          resets_at: w.resets_at,
          retry_after_ms: Math.max(0, Date.parse(w.resets_at) - nowMs),
          reason: w.reason
        })),
        unreadable: page.unreadable
      }
    })
})
