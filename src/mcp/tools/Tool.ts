/**
 * What an MCP tool is (name, title, description for the model, hints, input and output Schemas, the Effect it runs),
 * and the helpers the tools share: described field schemas, hint sets, caller checks and the spawn both spawn tools
 * make. No registry logic lives here; permission checks call mcp/Caller.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { taskSpend } from "../../budget/Spend.js"
import { parseAgentId, parseTaskId } from "../../domain/Decode.js"
import { AgentId, ORCHESTRATOR } from "../../domain/Ids.js"
import {
  ContextList,
  ContextText,
  MAX_CONTEXT_TEXT_CHARS,
  MAX_LIST_ITEM_CHARS,
  MAX_LIST_ITEMS,
  SpawnRequest
} from "../../domain/SpawnRequest.js"
import type { TaskRegistry } from "../../domain/Task.js"
import { Registry } from "../../registry/Registry.js"
import { spawn } from "../../spawn/Spawner.js"
import type { Services } from "../../Spawnkit.js"
import { type Caller, CallerIdentity, checkSubtree, checkTask } from "../Caller.js"
import type { ToolProgress } from "../Progress.js"

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
  readonly run: (input: I) => Effect.Effect<O, unknown, Services | CallerIdentity | ToolProgress>
}

/** A tool definition, its input and output types inferred from its Schemas. */
export const define = <I, O>(tool: ToolDefinition<I, O>): ToolDefinition<I, O> => tool

/** A schema with the description the model reads. */
export const described = <S extends Schema.Top>(schema: S, description: string) => schema.annotate({ description }) as S

/** Hints of a tool that writes spawnkit's own state and starts or affects agents that act on the world. */
export const writes: ToolHints = {
  readOnlyHint: false,
  destructiveHint: false,
  idempotentHint: false,
  openWorldHint: true
}
/** Hints of a tool that records what an agent reports: spawnkit's own state only. */
export const records: ToolHints = {
  readOnlyHint: false,
  destructiveHint: false,
  idempotentHint: false,
  openWorldHint: false
}
/** Hints of a tool that only reads spawnkit's own state. */
export const reads: ToolHints = {
  readOnlyHint: true,
  destructiveHint: false,
  idempotentHint: true,
  openWorldHint: false
}

// The domain's own schemas: a model sees their patterns and bounds in the listed JSON Schema, and a bad value is
// refused naming the tool's field (task_id, agent_type, …), before any code runs.
/** A task id field. */
export const taskIdField = SpawnRequest.fields.taskId
/** An agent id field. */
export const agentIdField = described(AgentId, "Agent id, e.g. investigator-193600-1a2b3c4d")
/** An engine field. */
export const engineField = SpawnRequest.fields.engine.schema

/** `timeoutSeconds` as `timeout_seconds`. */
export type SnakeCase<S extends string> = S extends `${infer C}${infer Rest}`
  ? `${C extends Lowercase<C> ? C : `_${Lowercase<C>}`}${SnakeCase<Rest>}`
  : S
/** `timeout_seconds` as `timeoutSeconds`. */
export type CamelCase<S extends string> = S extends `${infer Head}_${infer Rest}` ?
  `${Head}${Capitalize<CamelCase<Rest>>}`
  : S

const snakeCase = (key: string) => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)
const camelCase = (key: string) => key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase())

/** A domain Struct's fields under the MCP interface's snake_case names (`taskId` becomes `task_id`). */
export const snakeCaseFields = <F extends Schema.Struct.Fields>(
  fields: F
): { readonly [K in keyof F as K extends string ? SnakeCase<K> : K]: F[K] } =>
  Object.fromEntries(Object.entries(fields).map(([k, v]) => [snakeCase(k), v])) as any

/** A decoded tool input under the domain's camelCase names again. */
export const camelCaseKeys = <T extends object>(
  value: T
): { [K in keyof T as K extends string ? CamelCase<K> : K]: T[K] } =>
  Object.fromEntries(Object.entries(value).map(([k, v]) => [camelCase(k), v])) as any

/** Every spawn option, as the spawn tools take it. */
export const spawnFields = snakeCaseFields(SpawnRequest.fields)

/** What both spawn tools ask for. */
export const SpawnArguments = Schema.Struct(spawnFields)
/** @see SpawnArguments */
export type SpawnArguments = typeof SpawnArguments.Type

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
    return yield* spawn({ ...camelCaseKeys(input), parent, useTemplate: true })
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

/** A spend as the tools report it: tokens by kind and in all, cost in USD, and whether the cost is an estimate. */
export const SpendResult = Schema.Struct({
  tokens: Schema.Struct({
    input: Schema.Number,
    output: Schema.Number,
    cache_creation: Schema.Number,
    cache_read: Schema.Number
  }),
  total_tokens: Schema.Number,
  cost_usd: Schema.Number,
  estimated: Schema.Boolean,
  max_cost_usd: Schema.optionalKey(Schema.Number),
  max_tokens: Schema.optionalKey(Schema.Number)
})

/** A task's spend against its caps, as the tools report it. */
export const spendResultOf = (task: TaskRegistry) => {
  const { task_id: _id, ...spend } = taskSpend(task)
  return spend
}
