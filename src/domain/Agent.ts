/**
 * The agent record as stored in a task registry (`agents[]` of AGENT_REGISTRY.json), in the registry's snake_case.
 */
import * as Schema from "effect/Schema"
import { BudgetKind } from "./Errors.js"
import { BaseRef, CommitId } from "./GitRef.js"
import {
  AbsolutePath,
  AgentId,
  ConversationId,
  HostId,
  IdempotencyKey,
  ProcessId,
  SessionName,
  Sha256Hex,
  StoredAgentType,
  Timestamp,
  Uuid
} from "./Ids.js"
import { AgentUsage, OutputFormat } from "./Usage.js"

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
  "lost",
  "over_budget"
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

export { Timestamp } from "./Ids.js"

/** Who holds a reservation: enough for a reconciler to tell a live spawn from an abandoned one. */
export const Reservation = Schema.Struct({
  owner_pid: ProcessId,
  owner_host: HostId,
  reserved_at: Timestamp
})
/** @see Reservation */
export type Reservation = typeof Reservation.Type

/**
 * A spawn waiting for a slot (`queue: true`): a durable entry in its task's registry, so waiting spawns are admitted
 * in the order they asked, across processes and hosts. `id` is the agent id the spawn will have; `deadline` is when
 * the waiter gives up (an entry past it is ignored and dropped by the next change). Same-work fields let admission
 * refuse a duplicate of a waiting spawn at once.
 */
export const QueueEntry = Schema.Struct({
  id: AgentId,
  type: StoredAgentType,
  parent: AgentId,
  prompt_sha256: Sha256Hex,
  idempotency_key: Schema.optionalKey(IdempotencyKey),
  owner_pid: ProcessId,
  owner_host: HostId,
  queued_at: Timestamp,
  deadline: Timestamp
})
/** @see QueueEntry */
export type QueueEntry = typeof QueueEntry.Type

/** A spend cap in USD: more than zero, at most a million. */
export const CostCap = Schema.Finite.check(Schema.isBetween({ minimum: 0.000001, maximum: 1_000_000 }))
/** A spend cap in tokens (of every kind: input, cache writes and reads, output). */
export const TokenCap = Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1e15 }))

/** Caps on what an agent and every agent below it may spend together. */
export const Budget = Schema.Struct({
  max_cost_usd: Schema.optionalKey(CostCap),
  max_tokens: Schema.optionalKey(TokenCap)
})
/** @see Budget */
export type Budget = typeof Budget.Type

/** Why a budget stopped an agent: whose budget (the task's when `agent_id` is absent), which spend, the figures. */
export const BudgetStop = Schema.Struct({
  agent_id: Schema.optionalKey(AgentId),
  kind: BudgetKind,
  spent: Schema.Number.check(Schema.isFinite()),
  cap: Schema.Number.check(Schema.isFinite())
})
/** @see BudgetStop */
export type BudgetStop = typeof BudgetStop.Type

/**
 * Where an agent works: `none`, in the task's working directory (shared with the task's other agents); `worktree`, in
 * a git worktree of its own on a branch of its own (`spawnkit/<agent id>`), created by its spawn.
 */
export const Isolation = Schema.Literals(["none", "worktree"])
/** @see Isolation */
export type Isolation = typeof Isolation.Type

/**
 * How an agent's command is confined: `none`, as the user; `bwrap`, in a bubblewrap sandbox that shows it its working
 * directory (read-write), its own configuration and the system (read-only), and nothing of spawnkit's home, other
 * agents' files or the tmux socket (see src/host/Sandbox.ts).
 */
export const SandboxKind = Schema.Literals(["none", "bwrap"])
/** @see SandboxKind */
export type SandboxKind = typeof SandboxKind.Type

/**
 * A worktree's life as its owning record sees it: `active` while its agent may still use it; `kept` after the agent
 * ended with work in it (commits ahead of its base, or uncommitted or untracked changes); `removed` once it was
 * removed with its branch (it held no work, or a person removed it).
 */
export const WorktreeState = Schema.Literals(["active", "kept", "removed"])
/** @see WorktreeState */
export type WorktreeState = typeof WorktreeState.Type

/**
 * An agent's git worktree. Its path (`<worktrees root>/<task id>/<id>`) and branch (`spawnkit/<id>`) are derived from
 * `id` alone: the agent's own id, or for a resumed agent the id of the agent whose worktree it took over. The record
 * holding it last (in registry order) owns it.
 *
 * Security: `base_ref` reaches git's argv (to count commits behind it), so it is validated as a ref on every read.
 */
export const WorktreeRecord = Schema.Struct({
  id: AgentId,
  state: WorktreeState,
  /** The commit the branch started from; set when the worktree was created. */
  base_commit: Schema.optionalKey(CommitId),
  /** The ref it was based on (a branch, the parent's branch, or the one HEAD named), for "behind". */
  base_ref: Schema.optionalKey(BaseRef)
})
/** @see WorktreeRecord */
export type WorktreeRecord = typeof WorktreeRecord.Type

/** How an agent's process ended. */
export const AgentExit = Schema.Struct({
  exit_code: Schema.Int,
  last_lines: Schema.Array(Schema.String),
  at: Timestamp
})
/** @see AgentExit */
export type AgentExit = typeof AgentExit.Type

/**
 * Files an agent owns in its task workspace, for readers of the registry. Security: spawnkit never takes a path from
 * here (it derives every path from validated ids); a task refuses a record whose paths leave its workspace.
 */
export const TrackedFiles = Schema.Struct({
  prompt_file: Schema.optionalKey(AbsolutePath),
  log_file: Schema.optionalKey(AbsolutePath),
  progress_file: Schema.optionalKey(AbsolutePath),
  findings_file: Schema.optionalKey(AbsolutePath)
})

/**
 * One agent record, validated as untrusted input: agents can write their task's registry, so every id, name, number
 * and path is checked on every read. Security: an id that fails the allow-list makes the whole task RegistryCorrupt;
 * nothing read from a record that did not decode ever reaches a file operation or a tmux command.
 */
export const Agent = Schema.Struct({
  id: AgentId,
  type: StoredAgentType,
  tmux_session: SessionName,
  /** The parent agent's id, or "orchestrator" for a top-level agent. */
  parent: AgentId,
  depth: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 1000 })),
  status: AgentStatus,
  started_at: Timestamp,
  completed_at: Schema.optionalKey(Schema.NullOr(Timestamp)),
  last_update: Schema.optionalKey(Timestamp),
  progress: Schema.optionalKey(Schema.Number.check(Schema.isBetween({ minimum: 0, maximum: 100 }))),
  prompt: Schema.optionalKey(Schema.String),
  prompt_sha256: Schema.optionalKey(Sha256Hex),
  engine: Schema.optionalKey(Engine),
  idempotency_key: Schema.optionalKey(IdempotencyKey),
  reservation: Schema.optionalKey(Reservation),
  /** The host whose tmux server runs the agent's session (SPAWNKIT_HOST_ID); absent in older files: the local host. */
  host: Schema.optionalKey(HostId),
  exit: Schema.optionalKey(AgentExit),
  reason: Schema.optionalKey(Schema.String),
  /**
   * Set on a reservation by a kill that reached it while its spawn was in flight (the agent, or an ancestor with
   * cascade): the spawn's commit fails and rolls back.
   */
  cancelled: Schema.optionalKey(Schema.Struct({ reason: Schema.String, at: Timestamp })),
  tracked_files: Schema.optionalKey(TrackedFiles),
  /** sha256 of the per-agent secret in the agent's environment: proves a server speaks for this agent. */
  secret_sha256: Schema.optionalKey(Sha256Hex),
  /** Claude Code's `--session-id`, so a lost agent can be resumed (`claude --resume <id>`) rather than re-run. */
  claude_session_id: Schema.optionalKey(Uuid),
  /** The status the agent last reported about itself (its record's status follows its process). */
  reported_status: Schema.optionalKey(Schema.String),
  /** This agent's wall-clock limit in seconds (from the spawn or its task). */
  timeout_seconds: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))),
  /** This agent's stall limit in seconds: no new output for that long stops it. */
  stall_timeout_seconds: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))),
  /** The agent's last progress message. */
  last_message: Schema.optionalKey(Schema.String),
  /** Caps on the spend of this agent and its subtree (set at its spawn). */
  budget: Schema.optionalKey(Budget),
  /** Which output format its log follows, for metering (from its engine; SPAWNKIT_AGENT_FORMAT for custom). */
  output_format: Schema.optionalKey(OutputFormat),
  /** What it has spent, metered from its log, and how far the log has been read. */
  usage: Schema.optionalKey(AgentUsage),
  /** Set with status `over_budget`: the budget that stopped it. */
  budget_stop: Schema.optionalKey(BudgetStop),
  /** Its sandbox, when it runs in one. */
  sandbox: Schema.optionalKey(SandboxKind),
  /** Its git worktree, with `isolation: worktree`. */
  worktree: Schema.optionalKey(WorktreeRecord),
  /** The agent whose conversation this one resumed. */
  resumed_from: Schema.optionalKey(AgentId),
  /**
   * Its CLI's conversation id, for a resume: pre-assigned for Claude Code and Gemini CLI (`--session-id`) and the
   * custom engine (`{session_id}`); Codex's thread id is read from its output (usage.session_id, or its log).
   */
  session_id: Schema.optionalKey(ConversationId)
}).check(
  Schema.makeFilter((agent) =>
    agent.tmux_session === `agent_${agent.id}` ? true : `Expected tmux_session agent_${agent.id} (derived from the id)`
  )
)
/** @see Agent */
export type Agent = typeof Agent.Type
