/**
 * The get_agent_output tool: the bounded tail of an agent's output log, filtered and formatted.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { AgentStatus } from "../../domain/Agent.js"
import { agentOutput, FilterPattern, MaxBytes, OutputFormat, TailLines } from "../../reports/AgentOutput.js"
import { agentIdField, authorizeAgent, define, described, reads, taskIdField } from "./Tool.js"

/** get_agent_output */
export const GetAgentOutput = define({
  name: "get_agent_output",
  title: "Agent output",
  description:
    "The tail of an agent's output log (bounded by tail lines and max_bytes), optionally filtered by a regular " +
    "expression. format: text (default), jsonl (parsed JSON lines), parsed (Claude stream-json as readable events).",
  input: Schema.Struct({
    task_id: taskIdField,
    agent_id: agentIdField,
    tail: Schema.optionalKey(described(TailLines, "Last N lines (1-5000, default 100)")),
    filter: Schema.optionalKey(
      described(
        FilterPattern,
        "Regular expression in RE2 syntax (no backreferences or lookaround), at most 500 characters; only matching " +
          "lines are returned"
      )
    ),
    format: Schema.optionalKey(described(OutputFormat, "Output format (default text)")),
    max_bytes: Schema.optionalKey(
      described(MaxBytes, "Read at most this many bytes from the end of the log, 1 to 4194304 (default 262144)")
    )
  }),
  output: Schema.Struct({
    task_id: Schema.String,
    agent_id: Schema.String,
    status: AgentStatus,
    format: OutputFormat,
    /** Lines (or JSON events) returned. */
    lines: Schema.Int,
    /** The lines joined by line breaks (text, parsed), or the parsed JSON events (jsonl). */
    output: Schema.Union([Schema.String, Schema.Array(Schema.Unknown)])
  }),
  hints: reads,
  run: ({ task_id, agent_id, ...options }) =>
    authorizeAgent(task_id, agent_id).pipe(Effect.andThen(agentOutput(task_id, agent_id, options)))
})
