/**
 * The MCP logging capability: the eight RFC 5424 levels, the server's notable events as log records, and the sink
 * that hands each record to every connected server. A server sends a record as `notifications/message` when its
 * level is at or above the level its client set (`logging/setLevel`), and, for an agent's server, only when the
 * record is about the agent's own task.
 */
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js"
import {
  ErrorCode,
  type LoggingLevel,
  McpError,
  RequestSchema,
  SetLevelRequestSchema
} from "@modelcontextprotocol/sdk/types.js"
import type { AgentEvent } from "../domain/Event.js"
import type { Caller } from "./Caller.js"

/** The levels, least severe first. */
export const LOG_LEVELS: ReadonlyArray<LoggingLevel> = [
  "debug",
  "info",
  "notice",
  "warning",
  "error",
  "critical",
  "alert",
  "emergency"
]

/** The level a server sends at before its client sets one: problems only. */
export const DEFAULT_LOG_LEVEL: LoggingLevel = "warning"

/** Whether `level` is one of the eight levels. */
export const isLogLevel = (level: unknown): level is LoggingLevel =>
  typeof level === "string" && (LOG_LEVELS as ReadonlyArray<string>).includes(level)

/** Whether a record at `level` is sent to a client that set `minimum`. */
export const isAtLeast = (level: LoggingLevel, minimum: LoggingLevel): boolean =>
  LOG_LEVELS.indexOf(level) >= LOG_LEVELS.indexOf(minimum)

/** One notable event of the server. */
export interface LogRecord {
  readonly level: LoggingLevel
  readonly message: string
  /** The task it is about; a record without one is home-wide and reaches the orchestrator's servers only. */
  readonly taskId?: string
  readonly details?: Readonly<Record<string, unknown>>
}

/** The name notifications/message carries as its `logger`. */
export const LOGGER_NAME = "spawnkit"

/** The params of `notifications/message` for a record. */
export const notificationOf = (record: LogRecord) => ({
  level: record.level,
  logger: LOGGER_NAME,
  data: {
    message: record.message,
    ...(record.taskId === undefined ? {} : { task_id: record.taskId }),
    ...record.details
  }
})

const EVENT_LEVELS: Readonly<Record<AgentEvent["kind"], LoggingLevel>> = {
  spawned: "notice",
  progress: "info",
  finding: "info",
  exited: "notice",
  killed: "notice",
  timed_out: "warning",
  stalled: "warning",
  lost: "warning",
  over_budget: "warning",
  queued: "info",
  dequeued: "info"
}

/** An agent's state change as a log record: ends that were not asked for (a failure, a watchdog, a loss) warn. */
export const recordOfEvent = (event: AgentEvent): LogRecord => {
  const level = event.kind === "exited" && event.status !== "completed" ? "warning" : EVENT_LEVELS[event.kind]
  const what = event.kind === "exited"
    ? `exited (${event.status}${event.exit_code === undefined ? "" : `, exit code ${event.exit_code}`})`
    : event.kind.replace("_", " ")
  const why = event.reason ?? event.message
  return {
    level,
    message: `agent ${event.agent_id} ${what}${why === undefined ? "" : `: ${why}`}`,
    taskId: event.task_id,
    details: { agent_id: event.agent_id, kind: event.kind, status: event.status, seq: event.seq }
  }
}

/** Tags of tool failures that are the caller's to fix (a refusal), as opposed to the server's own failures. */
const CALLER_ERRORS = new Set([
  "InvalidInput",
  "TaskNotFound",
  "TaskExists",
  "TaskNotCorrupt",
  "AgentNotFound",
  "AgentNotRunning",
  "LimitReached",
  "DepthExceeded",
  "ParentNotFound",
  "ParentNotActive",
  "DuplicateAgent",
  "IdempotencyConflict",
  "RateLimited",
  "BudgetExceeded",
  "UsageLimited",
  "NotPermitted",
  "SpawnCancelled",
  "AgentExitedAtStartup"
])

/** A failed tool call as a log record: a refusal warns, a failure of the server itself (or a defect) is an error. */
export const recordOfToolFailure = (tool: string, tag: string, text: string): LogRecord => ({
  level: CALLER_ERRORS.has(tag) ? "warning" : "error",
  message: `${tool} failed: ${text}`,
  details: { tool, error: tag }
})

/** Where the server's notable events go: every connected server listens while it is connected. */
export class LogSink {
  private readonly listeners = new Set<(record: LogRecord) => void>()

  /** Hand a record to every listener. */
  publish(record: LogRecord): void {
    // A copy: a listener may unsubscribe (its server closing) while records are handed out.
    for (const listener of [...this.listeners]) listener(record)
  }

  /** Listen until the returned function is called. */
  listen(listener: (record: LogRecord) => void): () => void {
    this.listeners.add(listener)
    return () => {
      this.listeners.delete(listener)
    }
  }
}

// The SDK's own schema refuses a bad level with an internal error; with loose params it is checked here, and refused
// as invalid params naming the levels.
const SetLevelRequest = SetLevelRequestSchema.extend({ params: RequestSchema.shape.params })

/** Whether a caller may see a record: the orchestrator sees all, an agent its own task's only. */
const visibleTo = (caller: Caller, record: LogRecord) =>
  caller._tag === "Orchestrator" || record.taskId === caller.taskId

/**
 * Install logging/setLevel on a server and send it every record of `logs` (and those given to the returned `send`)
 * at or above its client's level, from now until the returned `stop`.
 */
export const installLogging = (mcp: McpServer, caller: Caller, logs: LogSink) => {
  let minimum: LoggingLevel = DEFAULT_LOG_LEVEL
  mcp.server.setRequestHandler(SetLevelRequest, async (request) => {
    const level = request.params?.["level"]
    if (!isLogLevel(level)) {
      throw new McpError(
        ErrorCode.InvalidParams,
        `InvalidInput: level ${JSON.stringify(level)} is not a logging level; use one of ${LOG_LEVELS.join(", ")}`
      )
    }
    minimum = level
    return {}
  })
  const send = (record: LogRecord) => {
    if (!isAtLeast(record.level, minimum) || !visibleTo(caller, record)) return
    // A message the transport cannot send (the client is leaving) is dropped.
    mcp.server.sendLoggingMessage(notificationOf(record)).catch(() => undefined)
  }
  return { send, stop: logs.listen(send) }
}
