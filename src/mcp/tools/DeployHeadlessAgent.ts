/**
 * The deploy_headless_agent tool: spawn an agent in a task, under the orchestrator or a named parent.
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

/** deploy_headless_agent */
export const DeployHeadlessAgent = define({
  name: "deploy_headless_agent",
  title: "Deploy an agent",
  description:
    "Start a headless agent in the task, in its own tmux session. The agent receives your prompt as its mission, " +
    "wrapped with its identity, the task's context and how to report back. Rejections say why: a limit reached " +
    "(wait or kill an agent), max depth, or a duplicate (the same parent, type and prompt is already active: its " +
    "id is returned). Pass idempotency_key to make retries safe. Called from an agent, the agent is the parent.",
  input: Schema.Struct({
    task_id: taskIdField,
    agent_type: agentTypeField(
      "Short role name, letters/digits/_/-, starting with a letter or digit, e.g. investigator; prefixes the agent id"
    ),
    prompt: promptField("The agent's mission, passed literally (up to 1 MiB, no NUL)"),
    parent: Schema.optionalKey(described(AgentId, "Parent agent id, or \"orchestrator\" (default)")),
    engine: Schema.optionalKey(engineField),
    idempotency_key: Schema.optionalKey(idempotencyKeyField),
    ...watchdogFields
  }),
  output: SpawnResult,
  hints: writes,
  run: spawnAs
})
