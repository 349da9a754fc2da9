/**
 * The wait_for_agents tool: block until agents end (all of them, or any one), woken by the event journal, so an
 * orchestrator need not poll. On timeout it returns the current states with timed_out (not an error): wait again.
 * While it waits it sends progress notifications when the request asks for them (every change, and a heartbeat), and
 * a cancelled request ends it at once. An agent may wait only on agents in its own subtree.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import { parseAgentId } from "../../domain/Decode.js"
import { AgentId } from "../../domain/Ids.js"
import { DEFAULT_WAIT_SECONDS, MAX_WAIT_AGENTS, MAX_WAIT_SECONDS, WAIT_FINDINGS, waitFor } from "../../wait/Wait.js"
import { checkSubtree } from "../Caller.js"
import { ToolProgress } from "../Progress.js"
import { define, described, reads, readTaskFor, taskIdField } from "./Tool.js"

/** How often a waiting call tells the client it is still waiting (clients reset their timeout on progress). */
const HEARTBEAT_SECONDS = 10

const WaitedAgent = Schema.Struct({
  agent_id: Schema.String,
  agent_type: Schema.String,
  parent: Schema.String,
  status: Schema.String,
  ended: Schema.Boolean,
  exit_code: Schema.optionalKey(Schema.Number),
  reason: Schema.optionalKey(Schema.String),
  progress: Schema.optionalKey(Schema.Number),
  last_lines: Schema.Array(Schema.String),
  findings: Schema.Array(Schema.Unknown)
})

/** wait_for_agents */
export const WaitForAgents = define({
  name: "wait_for_agents",
  title: "Wait for agents to end",
  description: "Block until agents end, instead of polling: agent_ids (those agents), or parent (every agent below " +
    "it; default the whole task, or for an agent the agents below itself), with mode all (default: until every one " +
    "has ended) or any (until one has). Returns each agent's final status, exit code, last output lines and " +
    `newest ${WAIT_FINDINGS} findings. After timeout_seconds (default ${DEFAULT_WAIT_SECONDS}, at most ` +
    `${MAX_WAIT_SECONDS}) it returns the states as they are with timed_out true: call again to keep waiting.`,
  input: Schema.Struct({
    task_id: taskIdField,
    agent_ids: Schema.optionalKey(
      described(Schema.Array(AgentId).check(Schema.isMaxLength(MAX_WAIT_AGENTS)), "Agents to wait for")
    ),
    parent: Schema.optionalKey(described(AgentId, "Wait for every agent below this one (not with agent_ids)")),
    mode: Schema.optionalKey(described(Schema.Literals(["all", "any"]), "all (default) or any")),
    timeout_seconds: Schema.optionalKey(
      described(
        Schema.Number.check(Schema.isFinite(), Schema.isBetween({ minimum: 0, maximum: MAX_WAIT_SECONDS })),
        `Seconds to wait at most (default ${DEFAULT_WAIT_SECONDS}, at most ${MAX_WAIT_SECONDS})`
      )
    )
  }),
  output: Schema.Struct({
    task_id: Schema.String,
    mode: Schema.String,
    satisfied: Schema.Boolean,
    timed_out: Schema.Boolean,
    agents: Schema.Array(WaitedAgent)
  }),
  hints: { ...reads, idempotentHint: true },
  run: (input) =>
    Effect.gen(function*() {
      const { caller, task } = yield* readTaskFor(input.task_id)
      const progress = yield* ToolProgress
      // An agent waits inside its own subtree: on agents below it (by default all of them), never above or beside.
      const parent = input.parent ??
        (caller._tag === "Agent" && input.agent_ids === undefined ? caller.agentId : undefined)
      for (const id of [...(input.agent_ids ?? []), ...(parent !== undefined ? [parent] : [])]) {
        yield* checkSubtree(caller, task, yield* parseAgentId(id))
      }
      let last = ""
      const heartbeat = Effect.suspend(() => progress.report(last === "" ? "waiting" : `${last} (still waiting)`)).pipe(
        Effect.repeat(Schedule.spaced(Duration.seconds(HEARTBEAT_SECONDS))),
        Effect.delay(Duration.seconds(HEARTBEAT_SECONDS))
      )
      return yield* Effect.raceFirst(
        waitFor(
          {
            taskId: input.task_id,
            ...(input.agent_ids !== undefined ? { agentIds: input.agent_ids } : {}),
            ...(parent !== undefined ? { parent } : {}),
            ...(input.mode !== undefined ? { mode: input.mode } : {}),
            ...(input.timeout_seconds !== undefined ? { timeoutSeconds: input.timeout_seconds } : {})
          },
          (ended, total) => {
            const now = `${ended} of ${total} agents ended`
            if (now === last) return Effect.void
            last = now
            return progress.report(now)
          }
        ),
        heartbeat.pipe(Effect.andThen(Effect.never))
      )
    })
})
