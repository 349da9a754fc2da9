/**
 * What a caller asks for when spawning an agent, and what a successful spawn returns.
 */
import * as Schema from "effect/Schema"
import { Engine } from "./Agent.js"
import { AgentId, AgentType, IdempotencyKey, TaskId } from "./Ids.js"

/** Largest prompt accepted, in bytes (UTF-8). */
export const MAX_PROMPT_BYTES = 1024 * 1024

/** A prompt: non-empty, at most MAX_PROMPT_BYTES, no NUL byte. Passed to the agent literally, through a file. */
export const Prompt = Schema.String.check(
  Schema.makeFilter((s: string) =>
    s.length === 0
      ? "Expected a non-empty prompt"
      : s.includes("\0")
      ? "Expected a prompt without NUL bytes"
      : Buffer.byteLength(s, "utf8") > MAX_PROMPT_BYTES
      ? `Expected a prompt of at most ${MAX_PROMPT_BYTES} bytes`
      : true
  )
)

/** A spawn request. `parent` is an agent id of the task, or "orchestrator" (the default); both are allow-listed. */
export const SpawnRequest = Schema.Struct({
  taskId: TaskId,
  agentType: AgentType,
  prompt: Prompt,
  parent: Schema.optionalKey(AgentId),
  engine: Schema.optionalKey(Engine),
  idempotencyKey: Schema.optionalKey(IdempotencyKey),
  /** Wall-clock limit of this agent in seconds (default: the task's). */
  timeoutSeconds: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 30 * 24 * 3600 }))),
  /** Stall limit of this agent in seconds: no new output for that long (default: the task's). */
  stallTimeoutSeconds: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 30 * 24 * 3600 })))
})
/** @see SpawnRequest */
export type SpawnRequest = typeof SpawnRequest.Type

/** The result of a spawn: a new agent, or the agent an idempotency key already named. */
export interface SpawnResult {
  readonly agent_id: string
  readonly task_id: string
  readonly tmux_session: string
  readonly status: string
  readonly depth: number
  readonly parent: string
  /** True when the idempotency key returned an agent spawned earlier instead of spawning again. */
  readonly existing: boolean
}

/** A new task's parameters. */
export const CreateTaskRequest = Schema.Struct({
  description: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(10_000)),
  /** An existing absolute directory the agents work in (the caller's project); default: the task directory. */
  working_directory: Schema.optionalKey(
    Schema.String.check(
      Schema.isPattern(/^\/[^\0\n\r]*$/, { message: "Expected an absolute path without NUL or line breaks" })
    )
  ),
  /** Free-form context shown to every agent of the task (background, deliverables, criteria, …). */
  task_context: Schema.optionalKey(Schema.Record(Schema.String, Schema.Unknown)),
  priority: Schema.optionalKey(Schema.Literals(["P0", "P1", "P2", "P3", "P4"])),
  engine: Schema.optionalKey(Engine),
  max_concurrent: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 10_000 }))),
  max_agents: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1_000_000 }))),
  max_depth: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 100 }))),
  max_children_per_parent: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 10_000 }))),
  max_spawns_per_minute: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1_000_000 }))),
  timeout_seconds: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 30 * 24 * 3600 }))),
  stall_timeout_seconds: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 30 * 24 * 3600 })))
})
/** @see CreateTaskRequest */
export type CreateTaskRequest = typeof CreateTaskRequest.Type
