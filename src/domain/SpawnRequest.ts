/**
 * What a caller asks for when spawning an agent, and what a successful spawn returns.
 */
import * as Schema from "effect/Schema"
import { CostCap, Engine, Isolation, SandboxKind, TokenCap } from "./Agent.js"
import { BaseRef } from "./GitRef.js"
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
  ),
  // Last, with a JSON Schema form, so a tool's description of the field reaches its listed schema.
  Schema.isMinLength(1),
  Schema.isMaxLength(MAX_PROMPT_BYTES)
)

/** Seconds of a watchdog limit (`timeout_seconds`, `stall_timeout_seconds`): 1 second to 30 days. */
export const WatchdogSeconds = Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 30 * 24 * 3600 }))

/** How long a queued spawn waits for a slot by default, in seconds. */
export const DEFAULT_QUEUE_SECONDS = 300
/** The longest a queued spawn may wait, in seconds. */
export const MAX_QUEUE_SECONDS = 86_400
const QueueSeconds = Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: MAX_QUEUE_SECONDS }))

/**
 * A spawn request: every spawn option, declared once. `parent` is an agent id of the task, or "orchestrator" (the
 * default); both are allow-listed. The MCP spawn tools list these fields (in snake_case) with these descriptions and
 * bounds; the API and the CLI decode through it.
 */
export const SpawnRequest = Schema.Struct({
  taskId: TaskId.annotate({ description: "Task id returned by create_real_task, e.g. TASK-20261124-193600-1a2b3c4d" }),
  agentType: AgentType.annotate({
    description:
      "Short role name, letters/digits/_/-, starting with a letter or digit, e.g. investigator; prefixes the agent id"
  }),
  prompt: Prompt.annotate({ description: "The agent's mission, passed literally (up to 1 MiB, no NUL)" }),
  parent: Schema.optionalKey(AgentId.annotate({ description: "Parent agent id, or \"orchestrator\" (default)" })),
  engine: Schema.optionalKey(
    Engine.annotate({
      description:
        "Engine to run the agent: claude, codex, gemini or custom (default: the task's, then SPAWNKIT_ENGINE)"
    })
  ),
  idempotencyKey: Schema.optionalKey(
    IdempotencyKey.annotate({
      description:
        "Optional key: retrying a spawn with the same key returns the agent spawned the first time instead of a twin"
    })
  ),
  /** Wall-clock limit of this agent in seconds (default: the task's). */
  timeoutSeconds: Schema.optionalKey(
    WatchdogSeconds.annotate({
      description: "Stop this agent after this many seconds, 1 to 2592000 (30 days) (default: the task's)"
    })
  ),
  /** Wait for a slot instead of being refused at max_concurrent or the global limit. */
  queue: Schema.optionalKey(
    Schema.Boolean.annotate({
      description: "When the task or the host is at its concurrency limit, wait in line for a slot instead of " +
        "being refused (LimitReached); every other check still answers at once (default false)"
    })
  ),
  /** How long a queued spawn waits for its slot, in seconds. */
  queueTimeoutSeconds: Schema.optionalKey(
    QueueSeconds.annotate({
      description: `With queue: give up after this many seconds (QueueTimedOut), 1 to ${MAX_QUEUE_SECONDS} ` +
        `(default ${DEFAULT_QUEUE_SECONDS})`
    })
  ),
  /** Stall limit of this agent in seconds: no new output for that long (default: the task's). */
  stallTimeoutSeconds: Schema.optionalKey(
    WatchdogSeconds.annotate({
      description: "Stop this agent after this many seconds without output, 1 to 2592000 (default: the task's)"
    })
  ),
  /** Cap on what this agent and every agent below it may spend together, in USD. */
  maxCostUsd: Schema.optionalKey(
    CostCap.annotate({
      description: "Budget in USD for this agent and its whole subtree (metered from their output); when spent, " +
        "they are stopped (over_budget) and further spawns under it are refused (BudgetExceeded)"
    })
  ),
  /** Cap on what this agent and every agent below it may spend together, in tokens. */
  maxTokens: Schema.optionalKey(
    TokenCap.annotate({
      description: "Budget in tokens (input, cache writes and reads, output) for this agent and its whole subtree"
    })
  ),
  /** Where the agent works: the task's working directory, or a git worktree of its own. */
  isolation: Schema.optionalKey(
    Isolation.annotate({
      description: "none: work in the task's working directory; worktree: a git worktree of its own on a new branch " +
        "spawnkit/<agent id>, removed after it ends unless it holds work (default: the task's, else none)"
    })
  ),
  /** How the agent's command is confined. */
  sandbox: Schema.optionalKey(
    SandboxKind.annotate({
      description:
        "none: the agent runs as the user; bwrap: in a bubblewrap sandbox showing it its working directory " +
        "(read-write), its own configuration and the system (read-only), and nothing of spawnkit's home, other " +
        "agents' files or the tmux socket (default: the task's, else none)"
    })
  ),
  /** With `isolation: worktree`, what the agent's branch starts from. */
  baseRef: Schema.optionalKey(
    BaseRef.annotate({
      description: "With isolation worktree: the branch, tag or commit the agent's branch starts from (default: " +
        "its parent's branch for a child of an isolated agent, else the task's base_ref, else the repository's HEAD)"
    })
  )
})
/** @see SpawnRequest */
export type SpawnRequest = typeof SpawnRequest.Type

/** What `spawn` takes: a SpawnRequest before validation, and whether to wrap the prompt in the agent template. */
export type SpawnInput = typeof SpawnRequest.Encoded & {
  /**
   * Wrap the prompt in the agent prompt template (identity, mission, task context, how to report, limits), as the
   * MCP tools do. Off by default: the CLI and the API pass the prompt literally.
   */
  readonly useTemplate?: boolean
}

/** The result of a spawn: a new agent, or the agent an idempotency key already named. */
export const SpawnResult = Schema.Struct({
  agent_id: Schema.String,
  task_id: Schema.String,
  tmux_session: Schema.String,
  status: Schema.String,
  depth: Schema.Int,
  parent: Schema.String,
  /** True when the idempotency key returned an agent spawned earlier instead of spawning again. */
  existing: Schema.Boolean
})
/** @see SpawnResult */
export type SpawnResult = typeof SpawnResult.Type

/** Longest task description, in characters. */
export const MAX_DESCRIPTION_CHARS = 10_000
/** Longest free text of a task's context (`background_context`, `conversation_history`), in characters. */
export const MAX_CONTEXT_TEXT_CHARS = 65_536
/** Most items in one list of a task's context (`expected_deliverables`, …). */
export const MAX_LIST_ITEMS = 100
/** Longest item of a task context's list, in characters. */
export const MAX_LIST_ITEM_CHARS = 2_000
/** Largest task context, in bytes of its JSON encoding (UTF-8): it is copied into every agent's prompt. */
export const MAX_TASK_CONTEXT_BYTES = 256 * 1024
/** Longest working directory path, in characters. */
export const MAX_PATH_CHARS = 4_096

// A UTF-16 surrogate without its other half: no UTF-8 can encode it, so it would be mangled in files and prompts.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/**
 * Text a caller stores in a task: at most `max` characters (a JSON Schema `maxLength`), not blank, without NUL and
 * without a lone surrogate. Such text ends up in registries, prompt files and tmux-started processes.
 */
export const StoredText = (max: number) =>
  Schema.String.check(
    Schema.makeFilter((s: string) =>
      s.trim().length === 0
        ? "Expected text that is not blank"
        : s.includes("\0")
        ? "Expected text without NUL characters"
        : LONE_SURROGATE.test(s)
        ? "Expected well-formed Unicode text (a lone surrogate has no UTF-8 encoding)"
        : true
    ),
    // Last: an annotation (a tool's description) goes to the last check, and this one has a JSON Schema form.
    Schema.isMinLength(1),
    Schema.isMaxLength(max)
  )

/** A task's description. */
export const TaskDescription = StoredText(MAX_DESCRIPTION_CHARS)
/** Free text of a task's context. */
export const ContextText = StoredText(MAX_CONTEXT_TEXT_CHARS)
/** A list of a task's context: at most MAX_LIST_ITEMS items (a JSON Schema `maxItems`) of bounded text. */
export const ContextList = Schema.Array(StoredText(MAX_LIST_ITEM_CHARS)).check(Schema.isMaxLength(MAX_LIST_ITEMS))

/** Context shown to every agent of a task; each field bounded, the whole at most MAX_TASK_CONTEXT_BYTES as JSON. */
export const TaskContext = Schema.Struct({
  background_context: Schema.optionalKey(ContextText),
  expected_deliverables: Schema.optionalKey(ContextList),
  success_criteria: Schema.optionalKey(ContextList),
  constraints: Schema.optionalKey(ContextList),
  relevant_files: Schema.optionalKey(ContextList),
  conversation_history: Schema.optionalKey(ContextText)
}).check(
  Schema.makeFilter((context) => {
    const bytes = Buffer.byteLength(JSON.stringify(context), "utf8")
    return bytes <= MAX_TASK_CONTEXT_BYTES ||
      `Expected a task context of at most ${MAX_TASK_CONTEXT_BYTES} bytes as JSON, got ${bytes}`
  })
)
/** @see TaskContext */
export type TaskContext = typeof TaskContext.Type

/** A task's `max_concurrent`. */
export const MaxConcurrent = Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 10_000 }))
/** A task's `max_agents`. */
export const MaxAgents = Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1_000_000 }))
/** A task's `max_depth`. */
export const MaxDepth = Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 100 }))

/** A task's priority, P0 (highest) to P4. */
export const Priority = Schema.Literals(["P0", "P1", "P2", "P3", "P4"])
/** @see Priority */
export type Priority = typeof Priority.Type

/** A new task's parameters. */
export const CreateTaskRequest = Schema.Struct({
  description: TaskDescription,
  /** An existing absolute directory the agents work in (the caller's project); default: the task directory. */
  working_directory: Schema.optionalKey(
    StoredText(MAX_PATH_CHARS).check(
      Schema.isPattern(/^\/[^\0\n\r]*$/, { message: "Expected an absolute path without NUL or line breaks" })
    )
  ),
  /** Context shown to every agent of the task (background, deliverables, criteria, …). */
  task_context: Schema.optionalKey(TaskContext),
  priority: Schema.optionalKey(Priority),
  engine: Schema.optionalKey(Engine),
  max_concurrent: Schema.optionalKey(MaxConcurrent),
  max_agents: Schema.optionalKey(MaxAgents),
  max_depth: Schema.optionalKey(MaxDepth),
  max_children_per_parent: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 10_000 }))),
  max_spawns_per_minute: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1_000_000 }))),
  timeout_seconds: Schema.optionalKey(WatchdogSeconds),
  stall_timeout_seconds: Schema.optionalKey(WatchdogSeconds),
  /** What all of the task's agents together may spend, in USD. */
  max_cost_usd: Schema.optionalKey(CostCap),
  /** What all of the task's agents together may spend, in tokens. */
  max_tokens: Schema.optionalKey(TokenCap),
  /** How the task's agents are confined by default. */
  sandbox: Schema.optionalKey(SandboxKind),
  /** Where the task's agents work by default: its working directory, or a git worktree each. */
  isolation: Schema.optionalKey(Isolation),
  /** With isolation worktree: what agents' branches start from by default (else the repository's HEAD). */
  base_ref: Schema.optionalKey(BaseRef)
})
/** @see CreateTaskRequest */
export type CreateTaskRequest = typeof CreateTaskRequest.Type
