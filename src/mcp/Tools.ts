/**
 * The MCP tools, as data: name, title, description for the model, an input Schema whose every field is described,
 * hints, and the one core Effect each runs. No registry logic lives here; permission checks call spawn/Caller.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { Engine } from "../domain/Agent.js"
import { NotPermitted } from "../domain/Errors.js"
import { AgentId, AgentType, IdempotencyKey, ORCHESTRATOR, TaskId } from "../domain/Ids.js"
import {
  ContextList,
  ContextText,
  MAX_CONTEXT_TEXT_CHARS,
  MAX_DESCRIPTION_CHARS,
  MAX_LIST_ITEM_CHARS,
  MAX_LIST_ITEMS,
  MAX_PATH_CHARS,
  MAX_TASK_CONTEXT_BYTES,
  MaxAgents,
  MaxConcurrent,
  MaxDepth,
  Prompt,
  TaskDescription,
  WatchdogSeconds
} from "../domain/SpawnRequest.js"
import type { Services } from "../Spawnkit.js"
import { findingsPath, progressPath } from "../registry/Workspace.js"
import { agentOutput, FilterPattern, MaxBytes, OutputFormat, TailLines } from "../spawn/AgentOutput.js"
import { type Caller, CallerIdentity, checkSubtree, checkTask } from "../spawn/Caller.js"
import { Finding, Percent, ProgressReport, readJsonLines, reportFinding, updateProgress } from "../spawn/Reports.js"
import { spawn } from "../spawn/Spawner.js"
import { activeCount, type TaskRegistry } from "../domain/Task.js"
import { createTask, kill, listTasks, MAX_PAGE, parseAgentId, parseTaskId } from "../spawn/Tasks.js"
import { Registry } from "../registry/Registry.js"
import { SpawnkitConfig } from "../SpawnkitConfig.js"

/** Hints a client may show or act on (MCP tool annotations). */
export interface ToolHints {
  readonly readOnlyHint: boolean
  readonly destructiveHint: boolean
  readonly idempotentHint: boolean
  readonly openWorldHint: boolean
}

/** One tool. */
export interface ToolDefinition<I = any> {
  readonly name: string
  readonly title: string
  readonly description: string
  readonly input: Schema.Codec<I, any>
  readonly hints: ToolHints
  readonly run: (input: I) => Effect.Effect<unknown, unknown, Services | CallerIdentity>
}

const d = <S extends Schema.Top>(schema: S, description: string) => schema.annotate({ description }) as S
// The domain's own schemas: a model sees their patterns and bounds in the listed JSON Schema, and a bad value is
// refused naming the tool's field (task_id, agent_type, …), before any code runs.
const taskId = d(TaskId, "Task id returned by create_real_task, e.g. TASK-20261124-193600-1a2b3c4d")
const agentId = d(AgentId, "Agent id, e.g. investigator-193600-1a2b3c4d")
const agentType = (description: string) => d(AgentType, description)
const prompt = (description: string) => d(Prompt, description)
const engine = d(Engine, "Engine to run the agent: claude, codex, gemini or custom (default: the task's, then SPAWNKIT_ENGINE)")
const idempotencyKey = d(
  IdempotencyKey,
  "Optional key: retrying a spawn with the same key returns the agent spawned the first time instead of a twin"
)

const define = <I>(tool: ToolDefinition<I>): ToolDefinition<I> => tool

const write = { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true }
const read = { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false }

/** The parent a spawn is made under: an agent's own server defaults to the agent itself. */
const parentFor = (caller: Caller, parent: string | undefined) =>
  parent === undefined || parent === ORCHESTRATOR ? (caller._tag === "Agent" ? caller.agentId : ORCHESTRATOR) : parent

/** Per-spawn watchdog limits of the spawn tools. */
const watchdogFields = {
  timeout_seconds: Schema.optionalKey(
    d(WatchdogSeconds, "Stop this agent after this many seconds, 1 to 2592000 (30 days) (default: the task's)")
  ),
  stall_timeout_seconds: Schema.optionalKey(
    d(WatchdogSeconds, "Stop this agent after this many seconds without output, 1 to 2592000 (default: the task's)")
  )
}

const spawnAs = (input: {
  readonly task_id: string
  readonly agent_type: string
  readonly prompt: string
  readonly parent?: string
  readonly engine?: Engine
  readonly idempotency_key?: string
  readonly timeout_seconds?: number
  readonly stall_timeout_seconds?: number
}) =>
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
const readTaskFor = (id: string) =>
  Effect.gen(function*() {
    const caller = yield* CallerIdentity
    const taskIdValue = yield* parseTaskId(id)
    yield* checkTask(caller, taskIdValue)
    const task = yield* (yield* Registry).read(taskIdValue)
    return { caller, task }
  })

/** Check that the caller may act for `agent` of task `task_id` (`strict`: only below itself). */
const authorizeAgent = (task_id: string, agent: string, strict = false) =>
  Effect.gen(function*() {
    const { caller, task } = yield* readTaskFor(task_id)
    const id = yield* parseAgentId(agent)
    yield* checkSubtree(caller, task, id, strict)
    return task
  })

/**
 * The input of a tool that takes no arguments: an object with no keys. (`Schema.Struct({})` would not do: it is any
 * value but null and undefined, extra keys included.)
 */
const NoArguments = Schema.Record(
  Schema.String,
  Schema.Never.annotate({ message: "Unexpected argument: this tool takes no arguments" })
)

const TEXT_RULES = "not blank, no NUL, no lone surrogates"
const contextText = (description: string) =>
  Schema.optionalKey(d(ContextText, `${description} (at most ${MAX_CONTEXT_TEXT_CHARS} characters; ${TEXT_RULES})`))
/** Agents whose recent reports a status call includes (the most recently updated). */
const MAX_REPORTED_AGENTS = 50

const StringList = (description: string) =>
  Schema.optionalKey(
    d(
      ContextList,
      `${description} (at most ${MAX_LIST_ITEMS} items of at most ${MAX_LIST_ITEM_CHARS} characters each; ${TEXT_RULES})`
    )
  )

/** Every tool spawnkit serves. */
export const tools: ReadonlyArray<ToolDefinition> = [
  define({
    name: "create_real_task",
    title: "Create a task",
    description:
      "Create a task: a workspace and registry that agents are deployed into. Returns task_id. Call this once per " +
      "piece of work, then deploy_headless_agent. Limits (max_concurrent, max_agents, max_depth) are enforced for " +
      "every spawn in the task. Only the orchestrator (not an agent) may create tasks. The context fields " +
      `(background_context, the lists, conversation_history) together take at most ${MAX_TASK_CONTEXT_BYTES} bytes ` +
      "as JSON: every agent's prompt carries them.",
    input: Schema.Struct({
      description: d(
        TaskDescription,
        `What the task is about; shown to every agent (at most ${MAX_DESCRIPTION_CHARS} characters; ${TEXT_RULES})`
      ),
      priority: Schema.optionalKey(d(Schema.Literals(["P0", "P1", "P2", "P3", "P4"]), "Priority, P0 (highest) to P4; default P2")),
      client_cwd: Schema.optionalKey(
        d(
          Schema.String.check(Schema.isMaxLength(MAX_PATH_CHARS)),
          "Absolute path of an existing directory of the project the agents work in (their working directory)"
        )
      ),
      background_context: contextText("Background every agent should know"),
      expected_deliverables: StringList("What the task must deliver"),
      success_criteria: StringList("How to tell the task is done"),
      constraints: StringList("Rules the agents must follow"),
      relevant_files: StringList("Files the agents should look at first"),
      conversation_history: contextText("Relevant excerpt of the conversation that led to the task"),
      max_concurrent: Schema.optionalKey(d(MaxConcurrent, "Agents of this task running at once, 1 to 10000 (default 20)")),
      max_agents: Schema.optionalKey(d(MaxAgents, "Agents in the task's lifetime, 1 to 1000000 (default 45)")),
      max_depth: Schema.optionalKey(
        d(MaxDepth, "Deepest level of the agent tree, 1 to 100; top-level agents are depth 1 (default 5)")
      ),
      timeout_seconds: Schema.optionalKey(
        d(WatchdogSeconds, "Stop each agent after this many seconds, 1 to 2592000 (recorded timed_out)")
      ),
      stall_timeout_seconds: Schema.optionalKey(
        d(WatchdogSeconds, "Stop an agent that writes no output for this many seconds, 1 to 2592000 (recorded stalled)")
      ),
      engine: Schema.optionalKey(engine)
    }),
    hints: write,
    run: (input) =>
      Effect.gen(function*() {
        const caller = yield* CallerIdentity
        if (caller._tag === "Agent") {
          return yield* new NotPermitted({ reason: `agent ${caller.agentId} cannot create tasks` })
        }
        const context = Object.fromEntries(
          (["background_context", "expected_deliverables", "success_criteria", "constraints", "relevant_files",
            "conversation_history"] as const).flatMap((k) => (input[k] !== undefined ? [[k, input[k]]] : []))
        )
        const task = yield* createTask({
          description: input.description,
          ...(input.priority !== undefined ? { priority: input.priority } : {}),
          ...(input.client_cwd !== undefined ? { working_directory: input.client_cwd } : {}),
          ...(Object.keys(context).length > 0 ? { task_context: context } : {}),
          ...(input.max_concurrent !== undefined ? { max_concurrent: input.max_concurrent } : {}),
          ...(input.max_agents !== undefined ? { max_agents: input.max_agents } : {}),
          ...(input.max_depth !== undefined ? { max_depth: input.max_depth } : {}),
          ...(input.timeout_seconds !== undefined ? { timeout_seconds: input.timeout_seconds } : {}),
          ...(input.stall_timeout_seconds !== undefined ? { stall_timeout_seconds: input.stall_timeout_seconds } : {}),
          ...(input.engine !== undefined ? { engine: input.engine } : {})
        })
        return {
          task_id: task.task_id,
          workspace: task.workspace,
          status: task.status,
          limits: { max_concurrent: task.max_concurrent, max_agents: task.max_agents, max_depth: task.max_depth }
        }
      })
  }),
  define({
    name: "deploy_headless_agent",
    title: "Deploy an agent",
    description:
      "Start a headless agent in the task, in its own tmux session. The agent receives your prompt as its mission, " +
      "wrapped with its identity, the task's context and how to report back. Rejections say why: a limit reached " +
      "(wait or kill an agent), max depth, or a duplicate (the same parent, type and prompt is already active: its " +
      "id is returned). Pass idempotency_key to make retries safe. Called from an agent, the agent is the parent.",
    input: Schema.Struct({
      task_id: taskId,
      agent_type: agentType("Short role name, letters/digits/_/-, starting with a letter or digit, e.g. investigator; prefixes the agent id"),
      prompt: prompt("The agent's mission, passed literally (up to 1 MiB, no NUL)"),
      parent: Schema.optionalKey(d(AgentId, "Parent agent id, or \"orchestrator\" (default)")),
      engine: Schema.optionalKey(engine),
      idempotency_key: Schema.optionalKey(idempotencyKey),
      ...watchdogFields
    }),
    hints: write,
    run: spawnAs
  }),
  define({
    name: "spawn_child_agent",
    title: "Spawn a child agent",
    description:
      "Start a child agent under parent_agent_id (an agent may only spawn below itself). Same rules as " +
      "deploy_headless_agent; the child is one level deeper than its parent and max_depth is enforced.",
    input: Schema.Struct({
      task_id: taskId,
      parent_agent_id: d(AgentId, "The parent agent's id (yourself, when called by an agent)"),
      child_agent_type: agentType("Short role name of the child, letters/digits/_/-, starting with a letter or digit"),
      child_prompt: prompt("The child's mission, passed literally (up to 1 MiB, no NUL)"),
      engine: Schema.optionalKey(engine),
      idempotency_key: Schema.optionalKey(idempotencyKey),
      ...watchdogFields
    }),
    hints: write,
    run: ({ parent_agent_id, child_agent_type, child_prompt, ...rest }) =>
      spawnAs({
        ...rest,
        agent_type: child_agent_type,
        prompt: child_prompt,
        parent: parent_agent_id
      })
  }),
  define({
    name: "get_real_task_status",
    title: "Task status",
    description:
      "The task's registry: every agent with its status, parent, depth, progress and exit; counts and limits; and " +
      `the latest progress reports and findings of its ${MAX_REPORTED_AGENTS} most recently updated agents.`,
    input: Schema.Struct({
      task_id: taskId,
      recent: Schema.optionalKey(
        d(
          Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 100 })),
          "Progress entries and findings to include per agent, 0 to 100 (default 3; 0: none)"
        )
      )
    }),
    hints: read,
    run: (input) =>
      Effect.gen(function*() {
        const { task } = yield* readTaskFor(input.task_id)
        const config = yield* SpawnkitConfig
        const recent = input.recent ?? 3
        // A status call reads a bounded amount whatever the task's size: the tails of the report logs of the most
        // recently updated agents only.
        const reported = recent === 0
          ? []
          : [...task.agents]
            .sort((a, b) => (b.last_update ?? b.started_at).localeCompare(a.last_update ?? a.started_at))
            .slice(0, MAX_REPORTED_AGENTS)
        const reports = yield* Effect.forEach(reported, (a) =>
          Effect.all({
            progress: readJsonLines(progressPath(config.home, task.task_id as TaskId, a.id as AgentId), recent),
            findings: readJsonLines(findingsPath(config.home, task.task_id as TaskId, a.id as AgentId), recent)
          }).pipe(Effect.map((r) => [a.id, r] as const)))
        return {
          ...task,
          agents: task.agents.map((a) => {
            const { secret_sha256: _secret, ...visible } = a
            return visible
          }),
          recent_reports: Object.fromEntries(reports.filter(([, r]) => r.progress.length + r.findings.length > 0))
        }
      })
  }),
  define({
    name: "get_agent_output",
    title: "Agent output",
    description:
      "The tail of an agent's output log (bounded by tail lines and max_bytes), optionally filtered by a regular " +
      "expression. format: text (default), jsonl (parsed JSON lines), parsed (Claude stream-json as readable events).",
    input: Schema.Struct({
      task_id: taskId,
      agent_id: agentId,
      tail: Schema.optionalKey(d(TailLines, "Last N lines (1-5000, default 100)")),
      filter: Schema.optionalKey(
        d(
          FilterPattern,
          "Regular expression in RE2 syntax (no backreferences or lookaround), at most 500 characters; only matching " +
            "lines are returned"
        )
      ),
      format: Schema.optionalKey(d(OutputFormat, "Output format (default text)")),
      max_bytes: Schema.optionalKey(
        d(MaxBytes, "Read at most this many bytes from the end of the log, 1 to 4194304 (default 262144)")
      )
    }),
    hints: read,
    run: ({ task_id, agent_id, ...options }) =>
      authorizeAgent(task_id, agent_id).pipe(Effect.andThen(agentOutput(task_id, agent_id, options)))
  }),
  define({
    name: "kill_real_agent",
    title: "Kill an agent",
    description:
      "Stop an agent: its whole process group (SIGTERM, then SIGKILL after a grace period) and tmux session; it is " +
      "marked killed with the reason and its log is kept. cascade also kills every agent below it. Killing an agent " +
      "that already ended changes nothing. An agent may kill only agents below itself.",
    input: Schema.Struct({
      task_id: taskId,
      agent_id: agentId,
      reason: Schema.optionalKey(d(Schema.String, "Why; recorded on the agent")),
      cascade: Schema.optionalKey(d(Schema.Boolean, "Also kill every agent below it (default false)"))
    }),
    hints: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
    run: (input) =>
      authorizeAgent(input.task_id, input.agent_id, true).pipe(
        Effect.andThen(kill(input.task_id, input.agent_id, input.reason, { cascade: input.cascade ?? false }))
      )
  }),
  define({
    name: "update_agent_progress",
    title: "Report progress",
    description:
      "Record an agent's progress: status (working, blocked, completed, failed), a message and 0-100. Reporting " +
      "completed does not stop the agent; it is recorded as completed when its process exits.",
    input: Schema.Struct({
      task_id: taskId,
      agent_id: d(Schema.String, "Your own agent id"),
      status: d(Schema.Literals(["running", "working", "blocked", "completed", "failed", "error"]), "Your current status"),
      message: d(ProgressReport.fields.message, "What you are doing, what blocks you, or what you finished (at most 10000 characters)"),
      progress: Schema.optionalKey(d(Percent, "Percent done, 0-100"))
    }),
    hints: write,
    run: ({ task_id, agent_id, ...report }) =>
      authorizeAgent(task_id, agent_id).pipe(Effect.andThen(updateProgress(task_id, agent_id, report)))
  }),
  define({
    name: "report_agent_finding",
    title: "Report a finding",
    description: "Record a finding of an agent: an issue, a solution, an insight or a recommendation, with a severity.",
    input: Schema.Struct({
      task_id: taskId,
      agent_id: d(Schema.String, "Your own agent id"),
      finding_type: d(Schema.Literals(["issue", "solution", "insight", "recommendation"]), "Kind of finding"),
      severity: d(Schema.Literals(["low", "medium", "high", "critical"]), "How much it matters"),
      message: d(Finding.fields.message, "The finding (1 to 20000 characters)"),
      data: Schema.optionalKey(d(Schema.Record(Schema.String, Schema.Unknown), "Structured details (file, line, …)"))
    }),
    hints: write,
    run: ({ task_id, agent_id, ...finding }) =>
      authorizeAgent(task_id, agent_id).pipe(Effect.andThen(reportFinding(task_id, agent_id, finding)))
  }),
  define({
    name: "list_tasks",
    title: "List tasks",
    description:
      "Tasks with their description, status and agent counts: by default those with agents running or starting " +
      "(scope active); scope all pages through every task, oldest first (pass next_cursor back as cursor). An agent " +
      "sees only its own task. Tasks whose registry cannot be read are listed under unreadable.",
    input: Schema.Struct({
      scope: Schema.optionalKey(
        d(Schema.Literals(["active", "all"]), "active (default): tasks holding slots; all: every task, a page at a time")
      ),
      cursor: Schema.optionalKey(d(TaskId, "next_cursor of the previous page (a task id)")),
      limit: Schema.optionalKey(
        d(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: MAX_PAGE })), `Tasks per page (1-${MAX_PAGE}, default 100)`)
      )
    }),
    hints: read,
    run: (input) =>
      Effect.gen(function*() {
        const caller = yield* CallerIdentity
        const summary = (t: TaskRegistry) => ({
          task_id: t.task_id,
          description: t.task_description,
          created_at: t.created_at,
          status: t.status,
          active_count: t.active_count,
          total_spawned: t.total_spawned,
          max_concurrent: t.max_concurrent
        })
        if (caller._tag === "Agent") {
          const task = yield* (yield* Registry).read(yield* parseTaskId(caller.taskId))
          return { tasks: [summary(task)], unreadable: [] }
        }
        const page = yield* listTasks({
          scope: input.scope ?? "active",
          limit: input.limit ?? 100,
          ...(input.cursor !== undefined ? { after: input.cursor } : {})
        })
        return {
          tasks: page.tasks.map(summary),
          unreadable: page.unreadable,
          ...(page.next !== undefined ? { next_cursor: page.next } : {})
        }
      })
  }),
  define({
    name: "get_global_status",
    title: "Global status",
    description:
      "Agents holding a slot across all tasks against the global limit, the tasks they are in, and who is calling " +
      "(orchestrator or agent). Tasks whose registry cannot be read are listed under unreadable.",
    input: NoArguments,
    hints: read,
    run: () =>
      Effect.gen(function*() {
        const caller = yield* CallerIdentity
        const config = yield* SpawnkitConfig
        const page = yield* listTasks({ scope: "active" })
        return {
          caller,
          active_tasks: page.tasks.length,
          active_agents: page.tasks.reduce((n, t) => n + activeCount(t.agents), 0),
          max_concurrent_agents: config.globalMaxConcurrent,
          unreadable: page.unreadable
        }
      })
  })
]
