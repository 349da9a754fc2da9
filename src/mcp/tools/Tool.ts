/**
 * What an MCP tool is (name, title, description for the model, hints, input and output Schemas, the Effect it runs),
 * and the helpers the tools share: described field schemas, hint sets, caller checks and the spawn both spawn tools
 * make. No registry logic lives here; permission checks call spawn/Caller.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { Engine } from "../../domain/Agent.js"
import { AgentId, AgentType, IdempotencyKey, ORCHESTRATOR, TaskId } from "../../domain/Ids.js"
import {
  ContextList,
  ContextText,
  MAX_CONTEXT_TEXT_CHARS,
  MAX_LIST_ITEM_CHARS,
  MAX_LIST_ITEMS,
  Prompt,
  WatchdogSeconds
} from "../../domain/SpawnRequest.js"
import type { Services } from "../../index.js"
import { Registry } from "../../registry/Registry.js"
import { type Caller, CallerIdentity, checkSubtree, checkTask } from "../../spawn/Caller.js"
import { spawn } from "../../spawn/Spawner.js"
import { parseAgentId, parseTaskId } from "../../spawn/Tasks.js"

/** Hints a client may show or act on (MCP tool annotations). */
export interface ToolHints {
  readonly readOnlyHint: boolean
  readonly destructiveHint: boolean
  readonly idempotentHint: boolean
  readonly openWorldHint: boolean
}

/**
 * One tool. `output` is the Schema of its result: the listed `outputSchema` is derived from it, and every result is
 * encoded through it before it is sent, so a result that does not conform is an error, never sent as it is.
 */
export interface ToolDefinition<I = any, O = any> {
  readonly name: string
  readonly title: string
  readonly description: string
  readonly input: Schema.Codec<I, any>
  readonly output: Schema.Codec<O, any>
  readonly hints: ToolHints
  readonly run: (input: I) => Effect.Effect<O, unknown, Services | CallerIdentity>
}

/** A tool definition, its input and output types inferred from its Schemas. */
export const define = <I, O>(tool: ToolDefinition<I, O>): ToolDefinition<I, O> => tool

/** A schema with the description the model reads. */
export const described = <S extends Schema.Top>(schema: S, description: string) => schema.annotate({ description }) as S

/** Hints of a tool that writes spawnkit's own state and starts or affects agents that act on the world. */
export const writes: ToolHints = { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true }
/** Hints of a tool that records what an agent reports: spawnkit's own state only. */
export const records: ToolHints = { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false }
/** Hints of a tool that only reads spawnkit's own state. */
export const reads: ToolHints = { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false }

// The domain's own schemas: a model sees their patterns and bounds in the listed JSON Schema, and a bad value is
// refused naming the tool's field (task_id, agent_type, …), before any code runs.
/** A task id field. */
export const taskIdField = described(TaskId, "Task id returned by create_real_task, e.g. TASK-20261124-193600-1a2b3c4d")
/** An agent id field. */
export const agentIdField = described(AgentId, "Agent id, e.g. investigator-193600-1a2b3c4d")
/** An agent type field. */
export const agentTypeField = (description: string) => described(AgentType, description)
/** A prompt field. */
export const promptField = (description: string) => described(Prompt, description)
/** An engine field. */
export const engineField = described(
  Engine,
  "Engine to run the agent: claude, codex, gemini or custom (default: the task's, then SPAWNKIT_ENGINE)"
)
/** An idempotency key field. */
export const idempotencyKeyField = described(
  IdempotencyKey,
  "Optional key: retrying a spawn with the same key returns the agent spawned the first time instead of a twin"
)

/** Per-spawn watchdog limits of the spawn tools. */
export const watchdogFields = {
  timeout_seconds: Schema.optionalKey(
    described(WatchdogSeconds, "Stop this agent after this many seconds, 1 to 2592000 (30 days) (default: the task's)")
  ),
  stall_timeout_seconds: Schema.optionalKey(
    described(WatchdogSeconds, "Stop this agent after this many seconds without output, 1 to 2592000 (default: the task's)")
  )
}

/**
 * The input of a tool that takes no arguments: an object with no keys. (`Schema.Struct({})` would not do: it is any
 * value but null and undefined, extra keys included.)
 */
export const NoArguments = Schema.Record(
  Schema.String,
  Schema.Never.annotate({ message: "Unexpected argument: this tool takes no arguments" })
)

/** The rules every stored text follows, as a description says them. */
export const TEXT_RULES = "not blank, no NUL, no lone surrogates"

/** An optional free-text field of a task's context. */
export const contextTextField = (description: string) =>
  Schema.optionalKey(
    described(ContextText, `${description} (at most ${MAX_CONTEXT_TEXT_CHARS} characters; ${TEXT_RULES})`)
  )

/** An optional list field of a task's context. */
export const contextListField = (description: string) =>
  Schema.optionalKey(
    described(
      ContextList,
      `${description} (at most ${MAX_LIST_ITEMS} items of at most ${MAX_LIST_ITEM_CHARS} characters each; ${TEXT_RULES})`
    )
  )

/** The parent a spawn is made under: an agent's own server defaults to the agent itself. */
const parentFor = (caller: Caller, parent: string | undefined) =>
  parent === undefined || parent === ORCHESTRATOR ? (caller._tag === "Agent" ? caller.agentId : ORCHESTRATOR) : parent

/** What both spawn tools ask for, in the tools' own field names. */
export interface SpawnArguments {
  readonly task_id: string
  readonly agent_type: string
  readonly prompt: string
  readonly parent?: string
  readonly engine?: Engine
  readonly idempotency_key?: string
  readonly timeout_seconds?: number
  readonly stall_timeout_seconds?: number
}

/** Spawn for the calling orchestrator or agent; an agent spawns only below itself. */
export const spawnAs = (input: SpawnArguments) =>
  Effect.gen(function*() {
    const caller = yield* CallerIdentity
    const registry = yield* Registry
    const parent = parentFor(caller, input.parent)
    if (caller._tag === "Agent") {
      const task = yield* registry.read(yield* parseTaskId(input.task_id))
      yield* checkSubtree(caller, task, parent)
    }
    return yield* spawn({
      taskId: input.task_id,
      agentType: input.agent_type,
      prompt: input.prompt,
      parent,
      useTemplate: true,
      ...(input.engine !== undefined ? { engine: input.engine } : {}),
      ...(input.idempotency_key !== undefined ? { idempotencyKey: input.idempotency_key } : {}),
      ...(input.timeout_seconds !== undefined ? { timeoutSeconds: input.timeout_seconds } : {}),
      ...(input.stall_timeout_seconds !== undefined ? { stallTimeoutSeconds: input.stall_timeout_seconds } : {})
    })
  })

/** Read a task for a caller that must belong to it. */
export const readTaskFor = (id: string) =>
  Effect.gen(function*() {
    const caller = yield* CallerIdentity
    const taskIdValue = yield* parseTaskId(id)
    yield* checkTask(caller, taskIdValue)
    const task = yield* (yield* Registry).read(taskIdValue)
    return { caller, task }
  })

/** Check that the caller may act for `agent` of task `task_id` (`strict`: only below itself). */
export const authorizeAgent = (task_id: string, agent: string, strict = false) =>
  Effect.gen(function*() {
    const { caller, task } = yield* readTaskFor(task_id)
    const id = yield* parseAgentId(agent)
    yield* checkSubtree(caller, task, id, strict)
    return task
  })

/** A task whose registry cannot be read, as a listing reports it. */
export const UnreadableTaskResult = Schema.Struct({
  task_id: Schema.String,
  location: Schema.String,
  reason: Schema.String
})
