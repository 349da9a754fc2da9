/**
 * The deploy_headless_agent tool: spawn an agent in a task, under the orchestrator or a named parent. Its input is
 * the domain's SpawnRequest under snake_case names.
 */
import { SpawnResult } from "../../domain/SpawnRequest.js"
import { define, SpawnArguments, spawnAs, writes } from "./Tool.js"

/** deploy_headless_agent */
export const DeployHeadlessAgent = define({
  name: "deploy_headless_agent",
  title: "Deploy an agent",
  description:
    "Start a headless agent in the task, in its own tmux session. The agent receives your prompt as its mission, " +
    "wrapped with its identity, the task's context and how to report back. Rejections say why: a limit reached " +
    "(wait or kill an agent), max depth, or a duplicate (the same parent, type and prompt is already active: its " +
    "id is returned). Pass idempotency_key to make retries safe. Called from an agent, the agent is the parent.",
  input: SpawnArguments,
  output: SpawnResult,
  hints: writes,
  run: spawnAs
})
