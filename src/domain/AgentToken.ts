/**
 * An agent's bearer token for the host's broker (`serve --http`): `ska1.<task id>.<agent id>.<secret>`. The ids say
 * which record to check; the secret (64 hex digits, drawn at the agent's reservation) is the proof: only its sha256 is
 * stored, on the record (`secret_sha256`). Pure: no I/O.
 *
 * Security: ids never hold a `.`, so the token splits back unambiguously; a token whose parts fail their allow-lists
 * is no token at all (the broker answers 401 without reading any registry).
 */
import * as Schema from "effect/Schema"
import { AgentId, TaskId } from "./Ids.js"

/** The prefix (and version) of every agent token. */
export const AGENT_TOKEN_PREFIX = "ska1"

/** An agent token's parts. */
export interface AgentTokenParts {
  readonly taskId: TaskId
  readonly agentId: AgentId
  readonly secret: string
}

const isTaskId = Schema.is(TaskId)
const isAgentId = Schema.is(AgentId)

/** The token of an agent, from its ids and secret. */
export const formatAgentToken = (taskId: TaskId, agentId: AgentId, secret: string): string =>
  `${AGENT_TOKEN_PREFIX}.${taskId}.${agentId}.${secret}`

/** The parts of an agent token, or undefined when the text is not one. */
export const parseAgentToken = (text: string): AgentTokenParts | undefined => {
  const parts = text.split(".")
  if (parts.length !== 4 || parts[0] !== AGENT_TOKEN_PREFIX) return undefined
  const [, taskId, agentId, secret] = parts as [string, string, string, string]
  if (!isTaskId(taskId) || !isAgentId(agentId) || !/^[0-9a-f]{64}$/.test(secret)) return undefined
  return { taskId, agentId, secret }
}
