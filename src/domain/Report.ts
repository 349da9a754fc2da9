/**
 * What an agent reports about itself: a progress report (status, message, percent) and a finding (kind, severity,
 * message, details).
 */
import * as Schema from "effect/Schema"

/** Statuses an agent may report about itself. `completed` and `failed` are claims: the process's exit decides. */
export const ReportedStatus = Schema.Literals(["running", "working", "blocked", "completed", "failed", "error"])
/** @see ReportedStatus */
export type ReportedStatus = typeof ReportedStatus.Type

/** Percent done: 0 to 100. */
export const Percent = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 100 }))

/** Longest progress message, in characters. */
export const MAX_PROGRESS_MESSAGE_CHARS = 10_000
/** Longest finding message, in characters. */
export const MAX_FINDING_MESSAGE_CHARS = 20_000

/** A progress report. */
export const ProgressReport = Schema.Struct({
  status: ReportedStatus,
  message: Schema.String.check(Schema.isMaxLength(MAX_PROGRESS_MESSAGE_CHARS)),
  progress: Schema.optionalKey(Percent)
})
/** @see ProgressReport */
export type ProgressReport = typeof ProgressReport.Type

/** The kind of a finding. */
export const FindingType = Schema.Literals(["issue", "solution", "insight", "recommendation"])

/** How much a finding matters. */
export const Severity = Schema.Literals(["low", "medium", "high", "critical"])

/** A finding. */
export const Finding = Schema.Struct({
  finding_type: FindingType,
  severity: Severity,
  message: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(MAX_FINDING_MESSAGE_CHARS)),
  data: Schema.optionalKey(Schema.Record(Schema.String, Schema.Unknown))
})
/** @see Finding */
export type Finding = typeof Finding.Type
