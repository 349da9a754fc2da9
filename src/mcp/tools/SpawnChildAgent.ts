/**
 * The spawn_child_agent tool: spawn an agent one level below a named parent (an agent: only below itself). Its input
 * is the domain's SpawnRequest under snake_case names, with the parent required and the child's type and prompt
 * named as such.
 */
import * as Schema from "effect/Schema"
import { AgentId } from "../../domain/Ids.js"
import { SpawnResult } from "../../domain/SpawnRequest.js"
import { define, described, spawnAs, spawnFields, writes } from "./Tool.js"

const { agent_type, prompt, parent: _parent, ...rest } = spawnFields

/** spawn_child_agent */
export const SpawnChildAgent = define({
  name: "spawn_child_agent",
  title: "Spawn a child agent",
  description: "Start a child agent under parent_agent_id (an agent may only spawn below itself). Same rules as " +
    "deploy_headless_agent; the child is one level deeper than its parent and max_depth is enforced.",
  input: Schema.Struct({
    ...rest,
    parent_agent_id: described(AgentId, "The parent agent's id (yourself, when called by an agent)"),
    child_agent_type: described(
      agent_type,
      "Short role name of the child, letters/digits/_/-, starting with a letter or digit"
    ),
    child_prompt: described(prompt, "The child's mission, passed literally (up to 1 MiB, no NUL)")
  }),
  output: SpawnResult,
  hints: writes,
  run: ({ parent_agent_id, child_agent_type, child_prompt, ...others }) =>
    spawnAs({ ...others, agent_type: child_agent_type, prompt: child_prompt, parent: parent_agent_id })
})
