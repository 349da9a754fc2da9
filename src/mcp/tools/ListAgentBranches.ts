/**
 * The list_agent_branches tool: the git branches of a task's (or an agent subtree's) worktrees and what each holds,
 * so an orchestrator can merge them; an agent sees only its own subtree.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { AgentStatus } from "../../domain/Agent.js"
import { parseAgentId, parseTaskId } from "../../domain/Decode.js"
import { ORCHESTRATOR } from "../../domain/Ids.js"
import { branchesOf } from "../../worktree/Worktrees.js"
import { CallerIdentity } from "../Caller.js"
import { agentIdField, authorizeAgent, define, described, reads, readTaskFor, taskIdField } from "./Tool.js"

const Branch = Schema.Struct({
  agent_id: Schema.String,
  status: AgentStatus,
  branch: Schema.String,
  path: Schema.String,
  /** `active` (its agent may still use it) or `kept` (its agent ended and it holds work). */
  state: Schema.String,
  base_ref: Schema.optionalKey(Schema.String),
  base_commit: Schema.optionalKey(Schema.String),
  exists: Schema.Boolean,
  ahead: Schema.Int,
  /** Of the commits ahead, those no other branch holds (0 once merged). */
  unmerged: Schema.Int,
  behind: Schema.optionalKey(Schema.Int),
  dirty: Schema.Boolean,
  holds_work: Schema.Boolean,
  commits: Schema.Array(Schema.Struct({ sha: Schema.String, subject: Schema.String }))
})

/** list_agent_branches */
export const ListAgentBranches = define({
  name: "list_agent_branches",
  title: "Agents' branches",
  description: "The git branches of agents working with isolation worktree (branch spawnkit/<agent id>) that are " +
    "still there: for each, its agent and status, worktree path, base, commits ahead (with their subjects, newest " +
    "first, at most 20) and behind its base, how many of those no other branch holds (unmerged: 0 once you merged it), " +
    "and whether it has uncommitted changes; holds_work says whether removing it would lose work. Worktrees " +
    "holding work are kept after their agents end, for you to merge (git merge spawnkit/<agent id>); once merged, " +
    "spawnkit worktree prune removes them. agent_id limits the list to that agent's subtree; an agent sees its own " +
    "subtree.",
  input: Schema.Struct({
    task_id: taskIdField,
    agent_id: Schema.optionalKey(described(agentIdField, "Only this agent and the agents below it"))
  }),
  output: Schema.Struct({ task_id: Schema.String, branches: Schema.Array(Branch) }),
  hints: reads,
  run: (input) =>
    Effect.gen(function*() {
      const caller = yield* CallerIdentity
      const root = input.agent_id ?? (caller._tag === "Agent" ? caller.agentId : ORCHESTRATOR)
      if (root === ORCHESTRATOR) yield* readTaskFor(input.task_id)
      else yield* authorizeAgent(input.task_id, root)
      const taskId = yield* parseTaskId(input.task_id)
      const branches = yield* branchesOf(taskId, root === ORCHESTRATOR ? undefined : yield* parseAgentId(root))
      return {
        task_id: taskId as string,
        branches: branches.map(({ task_id: _t, worktree: _w, ...b }) => b)
      }
    })
})
