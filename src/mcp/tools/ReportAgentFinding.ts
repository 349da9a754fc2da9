/**
 * The report_agent_finding tool: an agent records a finding with its kind and severity.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { Finding, FindingType, MAX_FINDING_MESSAGE_CHARS, Severity } from "../../domain/Report.js"
import { reportFinding } from "../../reports/Reports.js"
import { authorizeAgent, define, described, records, taskIdField } from "./Tool.js"

/** report_agent_finding */
export const ReportAgentFinding = define({
  name: "report_agent_finding",
  title: "Report a finding",
  description: "Record a finding of an agent: an issue, a solution, an insight or a recommendation, with a severity.",
  input: Schema.Struct({
    task_id: taskIdField,
    agent_id: described(Schema.String, "Your own agent id"),
    finding_type: described(FindingType, "Kind of finding"),
    severity: described(Severity, "How much it matters"),
    message: described(Finding.fields.message, `The finding (1 to ${MAX_FINDING_MESSAGE_CHARS} characters)`),
    data: Schema.optionalKey(
      described(Schema.Record(Schema.String, Schema.Unknown), "Structured details (file, line, …)")
    )
  }),
  output: Schema.Struct({
    task_id: Schema.String,
    agent_id: Schema.String,
    recorded: Schema.Boolean,
    finding_type: FindingType
  }),
  hints: records,
  run: ({ task_id, agent_id, ...finding }) =>
    authorizeAgent(task_id, agent_id).pipe(Effect.andThen(reportFinding(task_id, agent_id, finding)))
})
