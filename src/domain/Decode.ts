/**
 * Decoding what a caller gives: a Schema decode failure becomes InvalidInput naming the field, and the id parsers
 * validate a task or agent id on entry. No I/O.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import { InvalidInput } from "./Errors.js"
import { AgentId, TaskId } from "./Ids.js"

const issuesOf = SchemaIssue.makeFormatterStandardSchemaV1()

/**
 * Turn a Schema decode failure into InvalidInput naming the field: the path of its first issue (`a.b.0` for nested
 * values), or `field` when the value decoded was the field itself (an id, say). Every issue is in the reason.
 */
export const invalidInput = (e: Schema.SchemaError, field = "input") => {
  const issues = issuesOf(e.issue).issues
  const pathOf = (issue: (typeof issues)[number]) => (issue.path ?? []).map(String).join(".")
  const first = issues[0]
  const named = first === undefined || pathOf(first) === "" ? field : pathOf(first)
  const reason = issues.length === 0
    ? e.message
    : issues.map((i) => (pathOf(i) === named || pathOf(i) === "" ? i.message : `${pathOf(i)}: ${i.message}`)).join("; ")
  return new InvalidInput({ field: named, reason })
}

const decodeTaskId = Schema.decodeUnknownEffect(TaskId)
const decodeAgentId = Schema.decodeUnknownEffect(AgentId)

/** Validate a task id given by a caller; an error names `field`. */
export const parseTaskId = (value: unknown, field = "task_id") =>
  decodeTaskId(value).pipe(Effect.mapError((e) => invalidInput(e, field)))

/** Validate an agent id given by a caller; an error names `field`. */
export const parseAgentId = (value: unknown, field = "agent_id") =>
  decodeAgentId(value).pipe(Effect.mapError((e) => invalidInput(e, field)))
