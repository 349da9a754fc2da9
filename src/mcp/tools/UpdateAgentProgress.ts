/**
 * The update_agent_progress tool: an agent records its status, a message and percent done.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { MAX_PROGRESS_MESSAGE_CHARS, Percent, ProgressReport, ReportedStatus } from "../../domain/Report.js"
import { updateProgress } from "../../reports/Reports.js"
import { authorizeAgent, define, described, records, taskIdField } from "./Tool.js"

/** update_agent_progress */
export const UpdateAgentProgress = define({
  name: "update_agent_progress",
  title: "Report progress",
  description:
    "Record an agent's progress: status (working, blocked, completed, failed), a message and 0-100. Reporting " +
    "completed does not stop the agent; it is recorded as completed when its process exits.",
  input: Schema.Struct({
    task_id: taskIdField,
    agent_id: described(Schema.String, "Your own agent id"),
    status: described(ReportedStatus, "Your current status"),
    message: described(
      ProgressReport.fields.message,
      `What you are doing, what blocks you, or what you finished (at most ${MAX_PROGRESS_MESSAGE_CHARS} characters)`
    ),
    progress: Schema.optionalKey(described(Percent, "Percent done, 0-100"))
  }),
  output: Schema.Struct({
    task_id: Schema.String,
    agent_id: Schema.String,
    /** The record's status (a claimed end is kept as reported_status only). */
    status: Schema.String,
    reported_status: ReportedStatus,
    progress: Schema.Finite
  }),
  hints: records,
  run: ({ task_id, agent_id, ...report }) =>
    authorizeAgent(task_id, agent_id).pipe(Effect.andThen(updateProgress(task_id, agent_id, report)))
})
