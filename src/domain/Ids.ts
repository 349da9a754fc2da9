/**
 * Identifiers: branded, allow-listed strings for tasks, agents, agent types and tmux sessions.
 *
 * Security: every id that reaches a path, a tmux target or an environment variable passes one of these
 * patterns first, so no id can carry `/`, `..`, quotes, `$`, backticks, whitespace or NUL.
 */
import * as Schema from "effect/Schema"

// The `u` flag: Effect exports a pattern to JSON Schema only for a Unicode-aware expression, and the MCP tools' listed
// schemas should show a model the allow-lists.
const pattern = (regex: RegExp, what: string) =>
  Schema.String.check(
    Schema.isPattern(new RegExp(regex.source, "u"), {
      message: `Expected ${what} matching ${regex.source} (letters, digits, '_' and '-' only)`
    })
  )

/** A task id such as `TASK-20261124-193600-1a2b3c4d`; it is also the task's directory name. */
export const TaskId = pattern(/^TASK-[A-Za-z0-9_-]{1,59}$/, "a task id").pipe(Schema.brand("TaskId"))
/** @see TaskId */
export type TaskId = typeof TaskId.Type

/**
 * An agent type chosen by the caller, e.g. `investigator`; it becomes the prefix of the agent id. It starts with a
 * letter or a digit, so no agent id starts with `-` and the id is a plain value of a CLI flag (`--agent ID`).
 */
export const AgentType = Schema.String.check(
  Schema.isPattern(/^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$/u, {
    message:
      "Expected an agent type matching ^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$ (1-40 letters, digits, '_' and '-', starting with a letter or digit)"
  })
).pipe(Schema.brand("AgentType"))
/** @see AgentType */
export type AgentType = typeof AgentType.Type

/**
 * An agent type as a stored record holds it: registries written before agent types had to start with a letter or a
 * digit may hold one that starts with `-`, and they stay readable.
 */
export const StoredAgentType = pattern(/^[A-Za-z0-9_-]{1,40}$/, "an agent type").pipe(Schema.brand("AgentType"))

/**
 * An agent id such as `investigator-193600-1a2b3c4d`. Unlike a new agent type it may start with `-`: registries
 * written before agent types had to start with a letter or digit hold such ids, and their agents stay addressable.
 */
export const AgentId = pattern(/^[A-Za-z0-9_-]{1,64}$/, "an agent id").pipe(Schema.brand("AgentId"))
/** @see AgentId */
export type AgentId = typeof AgentId.Type

/** The tmux session name of an agent: `agent_<agent id>`. */
export const SessionName = pattern(/^agent_[A-Za-z0-9_-]{1,64}$/, "a session name").pipe(Schema.brand("SessionName"))
/** @see SessionName */
export type SessionName = typeof SessionName.Type

/** The parent of a top-level agent: the orchestrator (the caller without an agent identity). */
export const ORCHESTRATOR = "orchestrator" as AgentId

/** A host id (SPAWNKIT_HOST_ID): whose tmux server runs an agent's session. */
export const HostId = Schema.String.check(
  Schema.isPattern(/^[A-Za-z0-9_.-]{1,128}$/u, { message: "Expected a host id of letters, digits and _ . - (1-128)" })
)

/** A process id as recorded on a reservation: a positive integer (never 0 or a group). */
export const ProcessId = Schema.Int.check(Schema.isBetween({ minimum: 2, maximum: 2 ** 31 - 1 }))

/** An ISO-8601 time as the registry writes it; a stored time that does not parse is refused. */
export const Timestamp = Schema.String.check(
  Schema.makeFilter((s: string) =>
    s.length <= 40 && Number.isFinite(Date.parse(s)) ? true : "Expected an ISO-8601 time"
  )
)

/** A lower-case hex sha256 digest. */
export const Sha256Hex = Schema.String.check(
  Schema.isPattern(/^[0-9a-f]{64}$/u, { message: "Expected a sha256 digest (64 lower-case hex digits)" })
)

/** A UUID, as Claude Code's `--session-id` takes it. */
export const Uuid = Schema.String.check(
  Schema.isPattern(/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/u, {
    message: "Expected a UUID"
  })
)

/**
 * A normalized absolute path: starts with `/`, no `.` or `..` segment, no empty segment, no NUL or line break.
 * Security: a stored path of this shape can still name any directory, so spawnkit never derives a file operation
 * from one; it is kept for readers of the registry (and checked to lie inside the task's own workspace).
 */
export const AbsolutePath = Schema.String.check(
  Schema.makeFilter((s: string) =>
    (s === "/" || /^(\/[^/\0\n\r]+)+\/?$/.test(s)) && !s.split("/").some((seg) => seg === "." || seg === "..")
      ? true
      : "Expected a normalized absolute path (no '.', '..' or empty segments, no NUL or line breaks)"
  )
)

/**
 * An agent CLI's conversation id (Claude Code's session id, Codex's thread id, Gemini CLI's session id), as it reaches
 * the CLI's argv on a resume: letters, digits and `_ . : -`, starting with a letter or digit (never an option).
 * Security: recorded ids come from agents' own output, so one that does not match is never used.
 */
export const ConversationId = Schema.String.check(
  Schema.isPattern(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/u, {
    message: "Expected a conversation id of letters, digits and _ . : - (1-128), starting with a letter or digit"
  })
)

/** An idempotency key chosen by the caller; any printable text up to 200 characters. */
export const IdempotencyKey = Schema.String.check(
  Schema.isPattern(/^[\x21-\x7e]{1,200}$/u, {
    message: "Expected an idempotency key of 1-200 printable ASCII characters without spaces"
  })
)

/** The session name that belongs to an agent id. */
export const sessionNameOf = (agentId: AgentId): SessionName => `agent_${agentId}` as SessionName
