/**
 * The create_real_task tool: a new task (workspace and registry) with its context and limits; orchestrator only.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { CostCap, Isolation, SandboxKind, TokenCap } from "../../domain/Agent.js"
import { NotPermitted } from "../../domain/Errors.js"
import { BaseRef } from "../../domain/GitRef.js"
import {
  MAX_DESCRIPTION_CHARS,
  MAX_PATH_CHARS,
  MAX_TASK_CONTEXT_BYTES,
  MaxAgents,
  MaxConcurrent,
  MaxDepth,
  Priority,
  TaskDescription,
  WatchdogSeconds
} from "../../domain/SpawnRequest.js"
import { createTask } from "../../tasks/Tasks.js"
import { CallerIdentity } from "../Caller.js"
import { contextListField, contextTextField, define, described, engineField, TEXT_RULES, writes } from "./Tool.js"

const CONTEXT_KEYS = [
  "background_context",
  "expected_deliverables",
  "success_criteria",
  "constraints",
  "relevant_files",
  "conversation_history"
] as const

/** create_real_task */
export const CreateRealTask = define({
  name: "create_real_task",
  title: "Create a task",
  description:
    "Create a task: a workspace and registry that agents are deployed into. Returns task_id. Call this once per " +
    "piece of work, then deploy_headless_agent. Limits (max_concurrent, max_agents, max_depth) are enforced for " +
    "every spawn in the task. Only the orchestrator (not an agent) may create tasks. The context fields " +
    `(background_context, the lists, conversation_history) together take at most ${MAX_TASK_CONTEXT_BYTES} bytes ` +
    "as JSON: every agent's prompt carries them.",
  input: Schema.Struct({
    description: described(
      TaskDescription,
      `What the task is about; shown to every agent (at most ${MAX_DESCRIPTION_CHARS} characters; ${TEXT_RULES})`
    ),
    priority: Schema.optionalKey(described(Priority, "Priority, P0 (highest) to P4; default P2")),
    client_cwd: Schema.optionalKey(
      described(
        Schema.String.check(Schema.isMaxLength(MAX_PATH_CHARS)),
        "Absolute path of an existing directory of the project the agents work in (their working directory)"
      )
    ),
    background_context: contextTextField("Background every agent should know"),
    expected_deliverables: contextListField("What the task must deliver"),
    success_criteria: contextListField("How to tell the task is done"),
    constraints: contextListField("Rules the agents must follow"),
    relevant_files: contextListField("Files the agents should look at first"),
    conversation_history: contextTextField("Relevant excerpt of the conversation that led to the task"),
    max_concurrent: Schema.optionalKey(
      described(MaxConcurrent, "Agents of this task running at once, 1 to 10000 (default 20)")
    ),
    max_agents: Schema.optionalKey(described(MaxAgents, "Agents in the task's lifetime, 1 to 1000000 (default 45)")),
    max_depth: Schema.optionalKey(
      described(MaxDepth, "Deepest level of the agent tree, 1 to 100; top-level agents are depth 1 (default 5)")
    ),
    timeout_seconds: Schema.optionalKey(
      described(WatchdogSeconds, "Stop each agent after this many seconds, 1 to 2592000 (recorded timed_out)")
    ),
    stall_timeout_seconds: Schema.optionalKey(
      described(
        WatchdogSeconds,
        "Stop an agent that writes no output for this many seconds, 1 to 2592000 (recorded stalled)"
      )
    ),
    max_cost_usd: Schema.optionalKey(
      described(
        CostCap,
        "Budget in USD of all the task's agents together, metered from their output; when spent, " +
          "running agents are stopped (over_budget) and spawns refused (BudgetExceeded)"
      )
    ),
    max_tokens: Schema.optionalKey(
      described(TokenCap, "Budget in tokens (input, cache writes and reads, output) of all the task's agents together")
    ),
    engine: Schema.optionalKey(engineField),
    isolation: Schema.optionalKey(
      described(
        Isolation,
        "worktree: each agent works in a git worktree of its own on branch spawnkit/<agent id> (client_cwd must be " +
          "in a git repository), removed after it ends unless it holds work; none (default): all work in client_cwd"
      )
    ),
    base_ref: Schema.optionalKey(
      described(BaseRef, "With isolation worktree: the branch, tag or commit agents' branches start from (HEAD)")
    ),
    sandbox: Schema.optionalKey(
      described(
        SandboxKind,
        "bwrap: each agent runs in a bubblewrap sandbox that shows it its working directory and nothing of " +
          "spawnkit's home or other agents' files (needs client_cwd, or isolation worktree); none (default)"
      )
    )
  }),
  output: Schema.Struct({
    task_id: Schema.String,
    workspace: Schema.String,
    status: Schema.String,
    limits: Schema.Struct({ max_concurrent: Schema.Int, max_agents: Schema.Int, max_depth: Schema.Int })
  }),
  hints: writes,
  run: (input) =>
    Effect.gen(function*() {
      const caller = yield* CallerIdentity
      if (caller._tag === "Agent") {
        return yield* new NotPermitted({ reason: `agent ${caller.agentId} cannot create tasks` })
      }
      const context = Object.fromEntries(CONTEXT_KEYS.flatMap((k) => (input[k] !== undefined ? [[k, input[k]]] : [])))
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
        ...(input.max_cost_usd !== undefined ? { max_cost_usd: input.max_cost_usd } : {}),
        ...(input.max_tokens !== undefined ? { max_tokens: input.max_tokens } : {}),
        ...(input.engine !== undefined ? { engine: input.engine } : {}),
        ...(input.isolation !== undefined ? { isolation: input.isolation } : {}),
        ...(input.base_ref !== undefined ? { base_ref: input.base_ref } : {}),
        ...(input.sandbox !== undefined ? { sandbox: input.sandbox } : {})
      })
      return {
        task_id: task.task_id,
        workspace: task.workspace,
        status: task.status,
        limits: { max_concurrent: task.max_concurrent, max_agents: task.max_agents, max_depth: task.max_depth }
      }
    })
})
