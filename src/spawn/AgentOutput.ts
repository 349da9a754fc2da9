/**
 * An agent's output: the bounded tail of its log, optionally filtered by a regular expression, as text, as JSON lines,
 * or parsed into readable events where the log holds Claude Code's `--output-format stream-json` lines.
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { isActiveStatus } from "../domain/Agent.js"
import { AgentNotFound } from "../domain/Errors.js"
import { parseJsonLine } from "../internal/json.js"
import { tailLines } from "../internal/tail.js"
import { Registry } from "../registry/Registry.js"
import { logPath } from "../registry/Workspace.js"
import { SpawnkitConfig } from "../SpawnkitConfig.js"
import { makeLineFilter, MAX_FILTER_LENGTH } from "./LineFilter.js"
import { invalidInput } from "./Spawner.js"
import { parseAgentId, parseTaskId } from "./Tasks.js"

/** Options of an output read. */
export const OutputOptions = Schema.Struct({
  tail: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 5000 }))),
  filter: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(MAX_FILTER_LENGTH))),
  format: Schema.optionalKey(Schema.Literals(["text", "jsonl", "parsed"])),
  max_bytes: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 4 * 1024 * 1024 })))
})
/** @see OutputOptions */
export type OutputOptions = typeof OutputOptions.Type

const parseJson = (line: string): unknown =>
  line.trimStart().startsWith("{") ? parseJsonLine(line) : undefined

const field = (value: unknown, key: string): unknown =>
  typeof value === "object" && value !== null ? (value as Record<string, unknown>)[key] : undefined

const clip = (text: string, max = 500) => (text.length > max ? text.slice(0, max) + "…" : text)

/** One readable line for a Claude Code stream-json event, or the raw line when it is not one. */
export const describeEvent = (line: string): string => {
  const event = parseJson(line)
  const type = field(event, "type")
  if (typeof type !== "string") return line
  if (type === "system") return `[system] ${String(field(event, "subtype") ?? "")}`.trim()
  if (type === "result") {
    const cost = field(event, "total_cost_usd")
    return `[result ${String(field(event, "subtype") ?? "")}] ${clip(String(field(event, "result") ?? ""))}` +
      (typeof cost === "number" ? ` (cost $${cost.toFixed(4)})` : "")
  }
  const content = field(field(event, "message"), "content")
  if ((type === "assistant" || type === "user") && Array.isArray(content)) {
    return content.map((part) => {
      const kind = field(part, "type")
      if (kind === "text") return `[${type}] ${clip(String(field(part, "text") ?? ""))}`
      if (kind === "tool_use") return `[tool ${String(field(part, "name"))}] ${clip(JSON.stringify(field(part, "input")))}`
      if (kind === "tool_result") return `[tool result] ${clip(JSON.stringify(field(part, "content")))}`
      return `[${type} ${String(kind)}]`
    }).join("\n")
  }
  return `[${type}]`
}

/** Read an agent's output. */
export const agentOutput = Effect.fn("AgentOutput.read")(function*(
  taskIdInput: string,
  agentIdInput: string,
  optionsInput: unknown = {}
) {
  const taskId = yield* parseTaskId(taskIdInput)
  const agentId = yield* parseAgentId(agentIdInput)
  const options = yield* Schema.decodeUnknownEffect(OutputOptions)(optionsInput, { errors: "all" }).pipe(
    Effect.mapError(invalidInput)
  )
  const config = yield* SpawnkitConfig
  const registry = yield* Registry
  const task = yield* registry.read(taskId)
  const agent = task.agents.find((a) => a.id === agentId)
  if (agent === undefined) return yield* new AgentNotFound({ taskId, agentId })
  const tail = options.tail ?? 100
  const format = options.format ?? "text"
  const lines = yield* tailLines(logPath(config.home, taskId, agentId), 100_000, options.max_bytes ?? 256 * 1024)
  const filter = options.filter
  const matching = (filter === undefined
    ? lines
    : yield* Effect.scoped(
      Effect.flatMap(makeLineFilter(filter, config.filterTimeoutMs), (f) => f.matching(lines))
    )).slice(-tail)
  const output = format === "jsonl"
    ? matching.map((l) => parseJson(l)).filter((v) => v !== undefined)
    : format === "parsed"
    ? matching.map(describeEvent)
    : matching
  return {
    task_id: taskId,
    agent_id: agentId,
    status: agent.status,
    format,
    lines: output.length,
    output: format === "jsonl" ? output : (output as Array<string>).join("\n")
  }
})

/**
 * Follow an agent's log: print what it appends (as `tail -f` does), from its current end, until the agent is no
 * longer active and everything it wrote has been printed, or the fiber is interrupted (Ctrl-C).
 */
export const followOutput = Effect.fn("AgentOutput.follow")(function*(
  taskIdInput: string,
  agentIdInput: string,
  emit: (text: string) => Effect.Effect<void>,
  pollInterval: Duration.Input = "300 millis"
) {
  const taskId = yield* parseTaskId(taskIdInput)
  const agentId = yield* parseAgentId(agentIdInput)
  const config = yield* SpawnkitConfig
  const registry = yield* Registry
  const fs = yield* FileSystem.FileSystem
  const file = logPath(config.home, taskId, agentId)
  const sizeOf = fs.stat(file).pipe(Effect.map((i) => i.size), Effect.orElseSucceed(() => 0n))
  const stillActive = registry.read(taskId).pipe(
    Effect.map((t) => t.agents.find((a) => a.id === agentId)),
    Effect.flatMap((a) => (a === undefined ? Effect.fail(new AgentNotFound({ taskId, agentId })) : Effect.succeed(isActiveStatus(a.status))))
  )
  yield* stillActive
  let offset = yield* sizeOf
  const decoder = new TextDecoder()
  for (;;) {
    const active = yield* stillActive
    const size = yield* sizeOf
    if (size > offset) {
      const chunk = yield* Effect.scoped(
        Effect.gen(function*() {
          const handle = yield* fs.open(file, { flag: "r" })
          return yield* handle.readAlloc(Number(size - offset), { position: offset })
        })
      )
      offset = size
      if (Option.isSome(chunk)) yield* emit(decoder.decode(chunk.value, { stream: true }))
    } else if (!active) {
      return
    }
    yield* Effect.sleep(pollInterval)
  }
})
