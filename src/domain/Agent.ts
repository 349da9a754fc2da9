/**
 * The agent record as stored in a task registry (`agents[]` of AGENT_REGISTRY.json), in the registry's snake_case.
 */
import * as Schema from "effect/Schema"

/**
 * Lifecycle of an agent. `reserved` is a slot taken by a spawn in flight; `running`, `working` and `blocked` are a
 * live agent; the rest are terminal. `working`, `blocked`, `error` and `terminated` are kept so registries written by
 * the older orchestrator still decode.
 */
export const AgentStatus = Schema.Literals([
  "reserved",
  "running",
  "working",
  "blocked",
  "completed",
  "failed",
  "killed",
  "error",
  "terminated",
  "timed_out",
  "stalled",
  "lost"
])
/** @see AgentStatus */
export type AgentStatus = typeof AgentStatus.Type

const ACTIVE: ReadonlySet<AgentStatus> = new Set(["reserved", "running", "working", "blocked"])
const LIVE: ReadonlySet<AgentStatus> = new Set(["running", "working", "blocked"])

/** Whether the status holds a slot (counts against concurrency limits); reservations do. */
export const isActiveStatus = (status: AgentStatus): boolean => ACTIVE.has(status)
/** Whether the status is a committed, live agent (can have children, has a session it owns). */
export const isLiveStatus = (status: AgentStatus): boolean => LIVE.has(status)

/** The engines spawnkit can start. */
export const Engine = Schema.Literals(["claude", "codex", "gemini", "custom"])
/** @see Engine */
export type Engine = typeof Engine.Type

/** Who holds a reservation: enough for a reconciler to tell a live spawn from an abandoned one. */
export const Reservation = Schema.Struct({
  owner_pid: Schema.Number,
  owner_host: Schema.String,
  reserved_at: Schema.String
})
/** @see Reservation */
export type Reservation = typeof Reservation.Type

/** How an agent's process ended. */
export const AgentExit = Schema.Struct({
  exit_code: Schema.Number,
  last_lines: Schema.Array(Schema.String),
  at: Schema.String
})
/** @see AgentExit */
export type AgentExit = typeof AgentExit.Type

/** Files an agent owns in its task workspace. */
export const TrackedFiles = Schema.Struct({
  prompt_file: Schema.optionalKey(Schema.String),
  log_file: Schema.optionalKey(Schema.String),
  progress_file: Schema.optionalKey(Schema.String),
  findings_file: Schema.optionalKey(Schema.String)
})

/** One agent record. Ids are re-validated where they are used as paths or tmux targets. */
export const Agent = Schema.Struct({
  id: Schema.String,
  type: Schema.String,
  tmux_session: Schema.String,
  parent: Schema.String,
  depth: Schema.Number,
  status: AgentStatus,
  started_at: Schema.String,
  completed_at: Schema.optionalKey(Schema.NullOr(Schema.String)),
  last_update: Schema.optionalKey(Schema.String),
  progress: Schema.optionalKey(Schema.Number),
  prompt: Schema.optionalKey(Schema.String),
  prompt_sha256: Schema.optionalKey(Schema.String),
  engine: Schema.optionalKey(Schema.String),
  idempotency_key: Schema.optionalKey(Schema.String),
  reservation: Schema.optionalKey(Reservation),
  /** The host whose tmux server runs the agent's session (SPAWNKIT_HOST_ID); absent in older files: the local host. */
  host: Schema.optionalKey(Schema.String),
  exit: Schema.optionalKey(AgentExit),
  reason: Schema.optionalKey(Schema.String),
  tracked_files: Schema.optionalKey(TrackedFiles),
  /** sha256 of the per-agent secret in the agent's environment: proves a server speaks for this agent. */
  secret_sha256: Schema.optionalKey(Schema.String),
  /** Claude Code's `--session-id`, so a lost agent can be resumed (`claude --resume <id>`) rather than re-run. */
  claude_session_id: Schema.optionalKey(Schema.String),
  /** The status the agent last reported about itself (its record's status follows its process). */
  reported_status: Schema.optionalKey(Schema.String),
  /** This agent's wall-clock limit in seconds (from the spawn or its task). */
  timeout_seconds: Schema.optionalKey(Schema.Number),
  /** This agent's stall limit in seconds: no new output for that long stops it. */
  stall_timeout_seconds: Schema.optionalKey(Schema.Number),
  /** The agent's last progress message. */
  last_message: Schema.optionalKey(Schema.String)
})
/** @see Agent */
export type Agent = typeof Agent.Type
