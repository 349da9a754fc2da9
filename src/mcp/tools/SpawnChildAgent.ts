/**
 * The spawn_child_agent tool: spawn an agent one level below a named parent (an agent: only below itself).
 */
import * as Schema from "effect/Schema"
import { AgentId } from "../../domain/Ids.js"
import { SpawnResult } from "../../domain/SpawnRequest.js"
import {
  agentTypeField,
  define,
  described,
  engineField,
  idempotencyKeyField,
  promptField,
  spawnAs,
  taskIdField,
  watchdogFields,
  writes
} from "./Tool.js"

/** spawn_child_agent */
export const SpawnChildAgent = define({
  name: "spawn_child_agent",
  title: "Spawn a child agent",
  description:
    "Start a child agent under parent_agent_id (an agent may only spawn below itself). Same rules as " +
    "deploy_headless_agent; the child is one level deeper than its parent and max_depth is enforced.",
  input: Schema.Struct({
    task_id: taskIdField,
    parent_agent_id: described(AgentId, "The parent agent's id (yourself, when called by an agent)"),
    child_agent_type: agentTypeField("Short role name of the child, letters/digits/_/-, starting with a letter or digit"),
    child_prompt: promptField("The child's mission, passed literally (up to 1 MiB, no NUL)"),
    engine: Schema.optionalKey(engineField),
    idempotency_key: Schema.optionalKey(idempotencyKeyField),
    ...watchdogFields
  }),
  output: SpawnResult,
  hints: writes,
  run: ({ parent_agent_id, child_agent_type, child_prompt, ...rest }) =>
    spawnAs({ ...rest, agent_type: child_agent_type, prompt: child_prompt, parent: parent_agent_id })
})
