/**
 * The kill_real_agent tool: stop an agent (and with cascade its subtree); an agent only below itself.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { kill } from "../../lifecycle/Kill.js"
import { agentIdField, authorizeAgent, define, described, taskIdField } from "./Tool.js"

/** kill_real_agent */
export const KillRealAgent = define({
  name: "kill_real_agent",
  title: "Kill an agent",
  description:
    "Stop an agent: its whole process group (SIGTERM, then SIGKILL after a grace period) and tmux session; it is " +
    "marked killed with the reason and its log is kept. cascade also kills every agent below it. Killing an agent " +
    "that already ended changes nothing. An agent may kill only agents below itself.",
  input: Schema.Struct({
    task_id: taskIdField,
    agent_id: agentIdField,
    reason: Schema.optionalKey(described(Schema.String, "Why; recorded on the agent")),
    cascade: Schema.optionalKey(described(Schema.Boolean, "Also kill every agent below it (default false)"))
  }),
  output: Schema.Struct({
    agent_id: Schema.String,
    task_id: Schema.String,
    /** `killed`; `cancelled` for a spawn in flight; else the status it had already ended with. */
    status: Schema.String,
    /** False when the agent had already ended, or another kill got there first. */
    killed: Schema.Boolean,
    /** Descendants this kill ended or cancelled, deepest first. */
    cascaded: Schema.Array(Schema.String)
  }),
  hints: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
  run: (input) =>
    authorizeAgent(input.task_id, input.agent_id, true).pipe(
      Effect.andThen(kill(input.task_id, input.agent_id, input.reason, { cascade: input.cascade ?? false }))
    )
})
