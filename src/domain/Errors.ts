/**
 * Every error a spawnkit user can see, as Schema tagged classes. Each message says what was wrong and what to do.
 */
import * as Schema from "effect/Schema"

/** Input that fails validation (an id outside the allow-list, a prompt too large, an unknown engine). */
export class InvalidInput extends Schema.TaggedError<InvalidInput>()("InvalidInput", {
  field: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `Invalid ${this.field}: ${this.reason}. Fix the value and try again; nothing was changed.`
  }
}

/** A task with this id exists already; task ids are never reused. */
export class TaskExists extends Schema.TaggedError<TaskExists>()("TaskExists", {
  taskId: Schema.String
}) {
  override get message() {
    return `Task ${this.taskId} already exists; nothing was changed. Create the task under a new id, or use the ` +
      "existing one (spawnkit status --task " + this.taskId + ")."
  }
}

/** Quarantine was asked for a task whose registry decodes: quarantine is only for a registry that cannot be read. */
export class TaskNotCorrupt extends Schema.TaggedError<TaskNotCorrupt>()("TaskNotCorrupt", {
  taskId: Schema.String
}) {
  override get message() {
    return `Quarantine refused: task ${this.taskId} decodes; quarantine is for a registry that cannot be read. ` +
      "Nothing was changed. " +
      `To stop its agents, kill them (spawnkit kill --task ${this.taskId} --agent ID).`
  }
}

/** An agent that is not running (still starting, or already ended) was asked to do what only a running agent does. */
export class AgentNotRunning extends Schema.TaggedError<AgentNotRunning>()("AgentNotRunning", {
  taskId: Schema.String,
  agentId: Schema.String,
  status: Schema.String
}) {
  override get message() {
    return `Agent ${this.agentId} of task ${this.taskId} is ${this.status}, not running; nothing was recorded. ` +
      (this.status === "reserved" || this.status === "starting"
        ? "Wait until its spawn has committed, then try again."
        : "An agent that has ended cannot report; spawn a new one for further work.")
  }
}

/** An environment variable (or the setting it stands for) holds a value spawnkit cannot use. */
export class InvalidConfiguration extends Schema.TaggedError<InvalidConfiguration>()("InvalidConfiguration", {
  variable: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `Invalid configuration ${this.variable}: ${this.reason}. Fix the setting and start again; nothing was changed.`
  }
}

/** The HTTP server could not listen on its address. */
export class ServerBindFailed extends Schema.TaggedError<ServerBindFailed>()("ServerBindFailed", {
  host: Schema.String,
  port: Schema.Number,
  /** The system error code (EADDRINUSE, EACCES, EADDRNOTAVAIL…), when there is one. */
  code: Schema.optionalKey(Schema.String),
  reason: Schema.String
}) {
  override get message() {
    const advice = this.code === "EADDRINUSE"
      ? "Another process listens there: stop it or choose another --port."
      : this.code === "EACCES"
      ? "This user may not bind that port: choose a port above 1023."
      : this.code === "EADDRNOTAVAIL"
      ? "No interface of this machine has that address: choose one it has (--host)."
      : "Check --host and --port."
    return `Could not listen on ${this.host}:${this.port}: ${this.reason}. ${advice}`
  }
}

/** No registry exists for the task id. */
export class TaskNotFound extends Schema.TaggedError<TaskNotFound>()("TaskNotFound", {
  taskId: Schema.String
}) {
  override get message() {
    return `Task ${this.taskId} does not exist. Create it first (spawnkit task create) or list tasks with spawnkit status.`
  }
}

/** No agent record with this id exists in the task. */
export class AgentNotFound extends Schema.TaggedError<AgentNotFound>()("AgentNotFound", {
  taskId: Schema.String,
  agentId: Schema.String
}) {
  override get message() {
    return `Agent ${this.agentId} does not exist in task ${this.taskId}. Check the id with spawnkit status --task ${this.taskId}.`
  }
}

/** A limit that admission enforces. */
export const LimitName = Schema.Literals([
  "max_concurrent",
  "max_agents",
  "global_max_concurrent",
  "max_children_per_parent"
])
/** @see LimitName */
export type LimitName = typeof LimitName.Type

/** A spawn was refused because a limit is reached; reservations in flight count against it. */
export class LimitReached extends Schema.TaggedError<LimitReached>()("LimitReached", {
  limit: LimitName,
  current: Schema.Number,
  max: Schema.Number,
  taskId: Schema.String
}) {
  override get message() {
    return `Limit ${this.limit} reached in task ${this.taskId} (${this.current} of ${this.max}). ` +
      "Wait for an agent to finish or kill one, or raise the limit when creating the task."
  }
}

/** A spawn would put an agent deeper in the tree than the task allows. */
export class DepthExceeded extends Schema.TaggedError<DepthExceeded>()("DepthExceeded", {
  depth: Schema.Number,
  max: Schema.Number,
  taskId: Schema.String
}) {
  override get message() {
    return `Depth ${this.depth} exceeds max_depth ${this.max} of task ${this.taskId}. ` +
      "Do the work in this agent, or spawn from a shallower agent."
  }
}

/** The named parent is not an agent of the task. */
export class ParentNotFound extends Schema.TaggedError<ParentNotFound>()("ParentNotFound", {
  parent: Schema.String,
  taskId: Schema.String
}) {
  override get message() {
    return `Parent ${this.parent} is not an agent of task ${this.taskId}. Use "orchestrator" or an existing agent id.`
  }
}

/** The named parent exists but is not running (it finished, failed or is still starting). */
export class ParentNotActive extends Schema.TaggedError<ParentNotActive>()("ParentNotActive", {
  parent: Schema.String,
  status: Schema.String,
  taskId: Schema.String
}) {
  override get message() {
    return `Parent ${this.parent} of task ${this.taskId} is ${this.status}, not running; only a running agent can have children.`
  }
}

/** The same parent asked again for the same agent type with the same prompt while the first is still active. */
export class DuplicateAgent extends Schema.TaggedError<DuplicateAgent>()("DuplicateAgent", {
  existingAgentId: Schema.String,
  taskId: Schema.String
}) {
  override get message() {
    return `An identical agent (same parent, type and prompt) is already active: ${this.existingAgentId}. ` +
      "Use that agent, or change the prompt for parallel work."
  }
}

/** The idempotency key was used before with different spawn parameters. */
export class IdempotencyConflict extends Schema.TaggedError<IdempotencyConflict>()("IdempotencyConflict", {
  key: Schema.String,
  existingAgentId: Schema.String,
  taskId: Schema.String
}) {
  override get message() {
    return `Idempotency key ${JSON.stringify(this.key)} already belongs to agent ${this.existingAgentId} ` +
      "spawned with other parameters. Use a new key for a different spawn."
  }
}

/** Too many spawns in the task's rate window. */
export class RateLimited extends Schema.TaggedError<RateLimited>()("RateLimited", {
  taskId: Schema.String,
  max: Schema.Number,
  windowMs: Schema.Number,
  retryAfterMs: Schema.Number
}) {
  override get message() {
    return `Spawn rate limit of task ${this.taskId} reached (${this.max} per ${this.windowMs} ms). ` +
      `Retry in ${this.retryAfterMs} ms.`
  }
}

/**
 * A task's registry exists but does not decode (or holds a record that fails validation); it is left exactly as it
 * is. A spawn that needs the global count while such a task may hold slots fails closed with this error: the limit
 * cannot be proven.
 */
export class RegistryCorrupt extends Schema.TaggedError<RegistryCorrupt>()("RegistryCorrupt", {
  path: Schema.String,
  reason: Schema.String,
  /** The task whose registry it is, when known. */
  taskId: Schema.optionalKey(Schema.String)
}) {
  override get message() {
    return `Registry ${this.path} cannot be decoded (${this.reason}). It was not modified. ` +
      (this.taskId === undefined
        ? "Repair or move it aside by hand."
        : `Repair it by hand, or set the task aside with \`spawnkit task quarantine --task ${this.taskId}\` ` +
          "(keeps its registry byte for byte, stops its sessions, frees its slots).")
  }
}

/** A file system operation on the registry or workspace failed. */
export class RegistryIoError extends Schema.TaggedError<RegistryIoError>()("RegistryIoError", {
  path: Schema.String,
  operation: Schema.String,
  reason: Schema.String,
  /** The system error code (ENOSPC, EACCES, EROFS…) of the failed call, when there is one. */
  code: Schema.optionalKey(Schema.String)
}) {
  override get message() {
    const advice = this.code === "ENOSPC" || this.code === "EDQUOT"
      ? "The file system is full: free space, then try again."
      : this.code === "EACCES" || this.code === "EPERM"
      ? "This user may not do that there: fix the permissions of the path."
      : this.code === "EROFS"
      ? "The file system is read-only: point SPAWNKIT_HOME at a writable one."
      : "Check the path and its permissions."
    return `Could not ${this.operation} ${this.path}: ${this.reason}${
      this.code === undefined ? "" : ` (${this.code})`
    }. ` +
      advice
  }
}

/** The system error code of a failure, when it carries one (Node's `code`, or an effect PlatformError's cause). */
export const errnoCode = (error: unknown): string | undefined => {
  const seen = new Set<unknown>()
  let current: unknown = error
  while (typeof current === "object" && current !== null && !seen.has(current)) {
    seen.add(current)
    const code = (current as { readonly code?: unknown }).code
    if (typeof code === "string" && /^E[A-Z0-9]+$/.test(code)) return code
    current = (current as { readonly cause?: unknown }).cause ??
      (current as { readonly reason?: unknown }).reason
  }
  return undefined
}

/** RegistryIoError fields for a failed system call: its message and, when it has one, its errno code. */
export const ioFailure = (error: unknown): { readonly reason: string; readonly code?: string } => {
  const code = errnoCode(error)
  const reason = error instanceof Error ? error.message : String(error)
  return code === undefined ? { reason } : { reason, code }
}

/** A PostgreSQL registry operation failed (connection, query, migration). */
export class RegistryDatabaseError extends Schema.TaggedError<RegistryDatabaseError>()("RegistryDatabaseError", {
  /** The database, as a URL without its password. */
  database: Schema.String,
  operation: Schema.String,
  reason: Schema.String,
  /** PostgreSQL's SQLSTATE, when the server answered with one. */
  code: Schema.optionalKey(Schema.String)
}) {
  override get message() {
    return `PostgreSQL registry ${this.database}: could not ${this.operation}: ${this.reason}` +
      `${this.code === undefined ? "" : ` (SQLSTATE ${this.code})`}. ` +
      "Check SPAWNKIT_DATABASE_URL and that the server is running and reachable."
  }
}

/** A tmux command failed; carries the evidence. */
export class TmuxError extends Schema.TaggedError<TmuxError>()("TmuxError", {
  args: Schema.Array(Schema.String),
  exitCode: Schema.Number,
  stderr: Schema.String
}) {
  override get message() {
    return `tmux ${this.args.join(" ")} failed with exit code ${this.exitCode}: ${
      this.stderr.trim() || "(no output)"
    }. ` +
      "Check that tmux is installed and the socket is usable."
  }
}

/** The supervisor's watch of the exits directory failed (the directory was removed, or the watch broke). */
export class ExitWatchFailed extends Schema.TaggedError<ExitWatchFailed>()("ExitWatchFailed", {
  directory: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `The watch of ${this.directory} failed: ${this.reason}. The supervisor restarts it and reconciles; ` +
      "if this repeats, check that the home is writable."
  }
}

/** The agent's process ended before its spawn was committed; the spawn was rolled back. */
export class AgentExitedAtStartup extends Schema.TaggedError<AgentExitedAtStartup>()("AgentExitedAtStartup", {
  agentId: Schema.String,
  exitCode: Schema.Number,
  lastLines: Schema.Array(Schema.String)
}) {
  override get message() {
    return `Agent ${this.agentId} exited at start-up with code ${this.exitCode}; nothing was kept. ` +
      `Last output: ${this.lastLines.slice(-5).join(" | ") || "(none)"}. Check the engine command and its credentials.`
  }
}

/** A kill reached the agent while its spawn was in flight; the spawn was rolled back. */
export class SpawnCancelled extends Schema.TaggedError<SpawnCancelled>()("SpawnCancelled", {
  agentId: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `Agent ${this.agentId} was killed before its spawn committed (${this.reason}); nothing was kept.`
  }
}

/** A test-only fault injected at a named step of a spawn. */
export class InjectedFault extends Schema.TaggedError<InjectedFault>()("InjectedFault", {
  step: Schema.String
}) {
  override get message() {
    return `Injected fault at step ${this.step} (SPAWNKIT_FAULT is set; unset it outside tests).`
  }
}

/** Which spend a budget caps: USD (metered, estimated until the engine reports its cost) or tokens of every kind. */
export const BudgetKind = Schema.Literals(["cost_usd", "tokens"])
/** @see BudgetKind */
export type BudgetKind = typeof BudgetKind.Type

/**
 * A spawn was refused because a budget covering the new agent is spent: the task's (`agentId` absent) or that of an
 * agent above it, whose cap covers its whole subtree.
 */
export class BudgetExceeded extends Schema.TaggedError<BudgetExceeded>()("BudgetExceeded", {
  taskId: Schema.String,
  /** The agent whose subtree budget is spent; absent for the task's budget. */
  agentId: Schema.optionalKey(Schema.String),
  kind: BudgetKind,
  spent: Schema.Number,
  cap: Schema.Number
}) {
  override get message() {
    const whose = this.agentId === undefined ? `task ${this.taskId}` : `agent ${this.agentId}'s subtree`
    const figures = this.kind === "cost_usd"
      ? `$${this.spent.toFixed(4)} of $${this.cap}`
      : `${this.spent} tokens of ${this.cap}`
    return `The budget of ${whose} is spent: ${figures}. ` +
      "No more agents can start under it; raise the cap in a new task, or spawn elsewhere."
  }
}

/**
 * An engine on this host hit its provider's rate or usage limit (reported by one of its agents): new spawns on it are
 * refused until the limit resets, so an orchestrator backs off instead of spawning into the wall.
 */
/**
 * An agent whose CLI reaches spawnkit over MCP was to be spawned, and no broker (a `serve`, `serve --http` or
 * `supervise` process of this home) runs on this host to serve it: spawnkit starts no MCP server per agent and gives
 * no agent an unauthenticated path, so the spawn is refused before anything is written.
 */
export class BrokerUnavailable extends Schema.TaggedError<BrokerUnavailable>()("BrokerUnavailable", {
  engine: Schema.String,
  home: Schema.String
}) {
  override get message() {
    return `No spawnkit broker runs for ${this.home}: a ${this.engine} agent reaches spawnkit through one. Start ` +
      "`spawnkit supervise` (or `spawnkit serve --http`) on this host and spawn again; an MCP client's " +
      "`spawnkit serve` is one while it runs."
  }
}

export class UsageLimited extends Schema.TaggedError<UsageLimited>()("UsageLimited", {
  engine: Schema.String,
  host: Schema.String,
  /** When the limit resets (ISO-8601). */
  resetsAt: Schema.String,
  retryAfterMs: Schema.Number,
  reason: Schema.String
}) {
  override get message() {
    return `Engine ${this.engine} on host ${this.host} hit a usage limit (${this.reason}); it resets at ` +
      `${this.resetsAt}. Retry in ${this.retryAfterMs} ms, or spawn on another engine.`
  }
}

/** A worktree whose agent still holds a slot was asked to be removed. */
export class WorktreeInUse extends Schema.TaggedError<WorktreeInUse>()("WorktreeInUse", {
  taskId: Schema.String,
  agentId: Schema.String,
  status: Schema.String
}) {
  override get message() {
    return `The worktree of agent ${this.agentId} of task ${this.taskId} is in use (the agent is ${this.status}); ` +
      `nothing was removed. Kill the agent first (spawnkit kill --task ${this.taskId} --agent ${this.agentId}).`
  }
}

/** An agent that cannot be resumed: still active, already resumed by another, or without a conversation to resume. */
export class NotResumable extends Schema.TaggedError<NotResumable>()("NotResumable", {
  taskId: Schema.String,
  agentId: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `Agent ${this.agentId} of task ${this.taskId} cannot be resumed: ${this.reason}. Nothing was changed.`
  }
}

/** Errors a spawn can be rejected with by admission. */
export type AdmissionRejection =
  | BudgetExceeded
  | LimitReached
  | DepthExceeded
  | ParentNotFound
  | ParentNotActive
  | DuplicateAgent
  | IdempotencyConflict
  | RateLimited

/** Errors of the registry itself. */
export type RegistryError = RegistryCorrupt | RegistryIoError | RegistryDatabaseError | InjectedFault

/** A queued spawn waited its whole queue timeout without a slot; its place in line is gone. */
export class QueueTimedOut extends Schema.TaggedError<QueueTimedOut>()("QueueTimedOut", {
  taskId: Schema.String,
  waitedSeconds: Schema.Number
}) {
  override get message() {
    return `No slot freed in task ${this.taskId} within ${this.waitedSeconds} s of waiting; the spawn was not made ` +
      "and left the queue. Retry, raise queue_timeout_seconds, or free slots (kill an agent)."
  }
}

/** A reader asked for events older than the journal keeps (SPAWNKIT_EVENTS_RETAIN). */
export class EventsExpired extends Schema.TaggedError<EventsExpired>()("EventsExpired", {
  since: Schema.Number,
  oldest: Schema.Number
}) {
  override get message() {
    return `Events after ${this.since} are no longer all kept: the oldest kept is ${this.oldest}. ` +
      `Read the current state (spawnkit status) and follow from there, or raise SPAWNKIT_EVENTS_RETAIN.`
  }
}

/** The caller (an agent's own server) may not act on this task or agent. */
export class NotPermitted extends Schema.TaggedError<NotPermitted>()("NotPermitted", {
  reason: Schema.String
}) {
  override get message() {
    return `Not permitted: ${this.reason}. An agent acts only for itself and its own subtree.`
  }
}

/**
 * A git command spawnkit ran failed for a reason of git's own (not a refused input: a directory that is not a
 * repository, or a ref that names no commit, is InvalidInput). Carries git's own words; spawnkit changed nothing else.
 */
export class GitError extends Schema.TaggedError<GitError>()("GitError", {
  /** What spawnkit was doing, e.g. "add worktree /home/u/.spawnkit-worktrees/TASK-1/a1". */
  operation: Schema.String,
  /** The repository (its top-level directory, or the directory given). */
  repo: Schema.String,
  /** git's exit status; absent when git could not be started, was killed, or its output was too large. */
  exitCode: Schema.optionalKey(Schema.Int),
  /** git's standard error (or why it did not run). */
  stderr: Schema.String
}) {
  override get message() {
    return `git failed to ${this.operation} in repository ${this.repo}` +
      `${this.exitCode === undefined ? "" : ` (exit code ${this.exitCode})`}: ` +
      `${this.stderr.trim() || "(no output)"}. spawnkit changed nothing else; check the repository (git status, ` +
      "git worktree list) and try again."
  }
}

/**
 * A worktree removal without force was refused: the worktree holds work (uncommitted or untracked changes, or commits
 * on its branch that no other branch, tag or remote ref holds). Nothing was removed.
 */
export class WorktreeHoldsWork extends Schema.TaggedError<WorktreeHoldsWork>()("WorktreeHoldsWork", {
  /** The agent whose worktree it is, when known. */
  agentId: Schema.optionalKey(Schema.String),
  path: Schema.String,
  branch: Schema.String,
  dirty: Schema.Boolean,
  /** Commits on the branch that nothing else holds. */
  ahead: Schema.Int
}) {
  override get message() {
    const what = [
      ...(this.dirty ? ["uncommitted or untracked changes"] : []),
      ...(this.ahead > 0 ? [`${this.ahead} commit(s) on ${this.branch} that no other ref holds`] : [])
    ].join(" and ")
    return `Worktree ${this.path}${this.agentId === undefined ? "" : ` of agent ${this.agentId}`} holds work ` +
      `(${what}); nothing was removed. Merge ${this.branch} (or commit and merge what you want to keep) first, or ` +
      "remove it anyway with --force (that work is lost)."
  }
}
