/**
 * An agent's output: the bounded tail of its log, optionally filtered by a regular expression (see LineFilter), as
 * text, as JSON lines, or parsed into readable events where the log holds Claude Code's `--output-format stream-json`
 * lines; and following it as the agent writes.
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { isActiveStatus } from "../domain/Agent.js"
import { invalidInput, parseAgentId, parseTaskId } from "../domain/Decode.js"
import { AgentNotFound } from "../domain/Errors.js"
import { tailOf } from "../host/Tail.js"
import { logPath } from "../host/Workspace.js"
import { parseJsonLine } from "../internal/json.js"
import { Registry } from "../registry/Registry.js"
import { SpawnkitConfig } from "../SpawnkitConfig.js"
import { type LineFilter, makeLineFilter, MAX_FILTER_LENGTH } from "./LineFilter.js"

/** Lines of the tail (`tail`): at least 1, at most 5000. */
export const TailLines = Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 5000 }))
/** Bytes read from the end of the log (`max_bytes`): at least 1, at most 4 MiB. */
export const MaxBytes = Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 4 * 1024 * 1024 }))
/** An output filter's pattern (RE2 syntax, checked by LineFilter). */
export const FilterPattern = Schema.String.check(Schema.isMaxLength(MAX_FILTER_LENGTH))
/** An output format. */
export const OutputFormat = Schema.Literals(["text", "jsonl", "parsed"])
/** @see OutputFormat */
export type OutputFormat = typeof OutputFormat.Type

/** Options of an output read. */
export const OutputOptions = Schema.Struct({
  tail: Schema.optionalKey(TailLines),
  filter: Schema.optionalKey(FilterPattern),
  format: Schema.optionalKey(OutputFormat),
  max_bytes: Schema.optionalKey(MaxBytes)
})
/** @see OutputOptions */
export type OutputOptions = typeof OutputOptions.Type

const DEFAULT_TAIL = 100
const DEFAULT_MAX_BYTES = 256 * 1024
/** Lines a tail is taken from before filtering, whatever `tail` asks for. */
const SCANNED_LINES = 100_000
/** Most bytes a follower reads from the log at once; it reads again at once when more is waiting. */
const FOLLOW_READ_BYTES = 4 * 1024 * 1024

const parseJson = (line: string): unknown => line.trimStart().startsWith("{") ? parseJsonLine(line) : undefined

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
      if (kind === "tool_use") {
        return `[tool ${String(field(part, "name"))}] ${clip(JSON.stringify(field(part, "input")))}`
      }
      if (kind === "tool_result") return `[tool result] ${clip(JSON.stringify(field(part, "content")))}`
      return `[${type} ${String(kind)}]`
    }).join("\n")
  }
  return `[${type}]`
}

/**
 * One line of output as a follower emits it: `{ line }` (the log line, or its readable form with format `parsed`) or,
 * with format `jsonl`, `{ event }` (the line's JSON; lines that are not JSON are left out).
 */
export type OutputEntry = { readonly line: string } | { readonly event: unknown }

const entriesOf = (lines: ReadonlyArray<string>, format: OutputFormat): ReadonlyArray<OutputEntry> =>
  format === "jsonl"
    ? lines.flatMap((l) => {
      const event = parseJson(l)
      return event === undefined ? [] : [{ event }]
    })
    : format === "parsed"
    ? lines.map((l) => ({ line: describeEvent(l) }))
    : lines.map((line) => ({ line }))

const decodeOptions = (input: unknown) =>
  Schema.decodeUnknownEffect(OutputOptions)(input, { errors: "all", onExcessProperty: "error" }).pipe(
    Effect.mapError(invalidInput)
  )

/** The lines a filter keeps (all of them without one). */
const keep = (filter: LineFilter | undefined, lines: ReadonlyArray<string>) =>
  filter === undefined ? Effect.succeed(lines) : filter.matching(lines)

/** The agent's registry record, or AgentNotFound. */
const findAgent = (taskIdInput: string, agentIdInput: string) =>
  Effect.gen(function*() {
    const taskId = yield* parseTaskId(taskIdInput)
    const agentId = yield* parseAgentId(agentIdInput)
    const task = yield* (yield* Registry).read(taskId)
    const agent = task.agents.find((a) => a.id === agentId)
    if (agent === undefined) return yield* new AgentNotFound({ taskId, agentId })
    return { taskId, agentId, agent }
  })

/** Read an agent's output. */
export const agentOutput = Effect.fn("AgentOutput.read")(function*(
  taskIdInput: string,
  agentIdInput: string,
  optionsInput: unknown = {}
) {
  const options = yield* decodeOptions(optionsInput)
  const { agent, agentId, taskId } = yield* findAgent(taskIdInput, agentIdInput)
  const config = yield* SpawnkitConfig
  const format = options.format ?? "text"
  const read = yield* tailOf(
    logPath(config.home, taskId, agentId),
    SCANNED_LINES,
    options.max_bytes ?? DEFAULT_MAX_BYTES
  )
  const matching = yield* Effect.scoped(
    Effect.gen(function*() {
      const filter = options.filter === undefined
        ? undefined
        : yield* makeLineFilter(options.filter, config.filterTimeoutMs)
      return yield* keep(filter, read.lines)
    })
  )
  const entries = entriesOf(matching.slice(-(options.tail ?? DEFAULT_TAIL)), format)
  return {
    task_id: taskId,
    agent_id: agentId,
    status: agent.status,
    format,
    lines: entries.length,
    output: format === "jsonl"
      ? entries.map((e) => ("event" in e ? e.event : undefined))
      : entries.map((e) => ("line" in e ? e.line : "")).join("\n")
  }
})

/**
 * Follow an agent's log as `tail -n N -f` does: emit the tail (the same `tail`, `filter`, `format` and `max_bytes`
 * options as agentOutput), then every line the agent appends, filtered and formatted the same way, until the agent is
 * no longer active and everything it wrote has been emitted, or the fiber is interrupted (Ctrl-C). A line is emitted
 * once its line break is written (the last one also without, once the agent has ended); blank lines are left out.
 */
export const followOutput = Effect.fn("AgentOutput.follow")(function*(
  taskIdInput: string,
  agentIdInput: string,
  optionsInput: unknown,
  emit: (entry: OutputEntry) => Effect.Effect<void>,
  pollInterval: Duration.Input = "300 millis"
) {
  const options = yield* decodeOptions(optionsInput)
  const { agentId, taskId } = yield* findAgent(taskIdInput, agentIdInput)
  const config = yield* SpawnkitConfig
  const registry = yield* Registry
  const fs = yield* FileSystem.FileSystem
  const format = options.format ?? "text"
  const file = logPath(config.home, taskId, agentId)
  const sizeOf = fs.stat(file).pipe(Effect.map((i) => i.size), Effect.orElseSucceed(() => 0n))
  const stillActive = registry.read(taskId).pipe(
    Effect.map((t) => t.agents.find((a) => a.id === agentId)),
    Effect.flatMap((
      a
    ) => (a === undefined
      ? Effect.fail(new AgentNotFound({ taskId, agentId }))
      : Effect.succeed(isActiveStatus(a.status)))
    )
  )
  return yield* Effect.scoped(Effect.gen(function*() {
    const filter = options.filter === undefined
      ? undefined
      : yield* makeLineFilter(options.filter, config.filterTimeoutMs)
    const emitLines = (lines: ReadonlyArray<string>) =>
      keep(filter, lines.filter((l) => l.trim().length > 0)).pipe(
        Effect.flatMap((kept) => Effect.forEach(entriesOf(kept, format), emit, { discard: true }))
      )
    const tail = yield* tailOf(file, SCANNED_LINES, options.max_bytes ?? DEFAULT_MAX_BYTES)
    // A line still being written is not shown yet: the follower goes on from its start and shows it once it ends.
    const complete = tail.unterminated.trim().length > 0 ? tail.lines.slice(0, -1) : tail.lines
    const shown = (yield* keep(filter, complete)).slice(-(options.tail ?? DEFAULT_TAIL))
    yield* Effect.forEach(entriesOf(shown, format), emit, { discard: true })
    let offset = tail.end
    let partial = tail.unterminated
    const decoder = new TextDecoder()
    for (;;) {
      const active = yield* stillActive
      const size = yield* sizeOf
      if (size > offset) {
        const length = size - offset > BigInt(FOLLOW_READ_BYTES) ? FOLLOW_READ_BYTES : Number(size - offset)
        const chunk = yield* Effect.scoped(
          Effect.gen(function*() {
            const handle = yield* fs.open(file, { flag: "r" })
            return yield* handle.readAlloc(length, { position: offset })
          })
        )
        const bytes = Option.getOrElse(chunk, () => new Uint8Array())
        offset += BigInt(bytes.length)
        const lines = (partial + decoder.decode(bytes, { stream: true })).split(/\r?\n/)
        partial = lines.pop() ?? ""
        yield* emitLines(lines)
        // More than one read's worth was waiting: read on before sleeping.
        if (bytes.length > 0 && offset < size) continue
      } else if (!active) {
        return yield* emitLines([partial + decoder.decode()])
      }
      yield* Effect.sleep(pollInterval)
    }
  }))
})
