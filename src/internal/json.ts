/**
 * Lenient JSON for log lines: a line that is not a JSON value yields undefined instead of an error.
 */
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"

const decodeJson = Schema.decodeUnknownOption(Schema.fromJsonString(Schema.Unknown))

/** The JSON value of a line, or undefined when it is not JSON. */
export const parseJsonLine = (line: string): unknown => Option.getOrUndefined(decodeJson(line))
