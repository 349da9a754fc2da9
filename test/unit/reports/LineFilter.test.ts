/**
 * A filter pattern's check, before any worker thread starts: RE2 syntax only (constructs RE2 lacks are refused
 * naming the construct), a pattern that does not compile, and the length bound; each an InvalidInput on `filter`.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { InvalidInput } from "../../../src/domain/Errors.js"
import { checkFilter, MAX_FILTER_LENGTH } from "../../../src/reports/LineFilter.js"

const refusal = (pattern: string) =>
  Effect.gen(function*() {
    const error = yield* Effect.flip(checkFilter(pattern))
    expect(error).toBeInstanceOf(InvalidInput)
    expect(error.field, pattern).toBe("filter")
    return error
  })

describe("checkFilter", () => {
  const unsupported: ReadonlyArray<readonly [string, string]> = [
    ["(a)\\1", "backreference \\1"],
    ["(?<n>a)\\k<n>", "named backreference"],
    ["foo(?=bar)", "lookahead (?=…)"],
    ["foo(?!bar)", "negative lookahead (?!…)"],
    ["(?<=a)b", "lookbehind (?<=…)"],
    ["(?<!a)b", "negative lookbehind (?<!…)"],
    ["(?>a)b", "atomic group"],
    ["a++", "possessive quantifier"]
  ]
  for (const [pattern, construct] of unsupported) {
    it.effect(`refuses ${pattern}, naming the ${construct}`, () =>
      Effect.gen(function*() {
        const error = yield* refusal(pattern)
        expect(error.reason).toContain(construct)
        expect(error.reason).toContain("not supported")
        expect(error.message).toContain("Invalid filter")
      }))
  }

  it.effect("refuses a pattern that does not compile, saying why", () =>
    Effect.gen(function*() {
      expect((yield* refusal("(unclosed")).reason).toContain("missing closing )")
      expect((yield* refusal("[z-a]")).reason).toContain("not a valid regular expression")
    }))

  it.effect(`accepts up to ${MAX_FILTER_LENGTH} characters and refuses one more`, () =>
    Effect.gen(function*() {
      yield* checkFilter("a".repeat(MAX_FILTER_LENGTH))
      const long = yield* refusal("a".repeat(MAX_FILTER_LENGTH + 1))
      expect(long.reason).toContain(`${MAX_FILTER_LENGTH + 1} characters, more than ${MAX_FILTER_LENGTH}`)
    }))

  it.effect("accepts RE2 syntax: anchors, classes, alternation, inline flags, bounded repetition", () =>
    Effect.gen(function*() {
      for (const pattern of ["^MARK|(?i:error) [0-9]+", "\\bfoo\\b", "[[:alpha:]]+", "(a|b|ab|ba){1,1000}\\d", ""]) {
        yield* checkFilter(pattern)
      }
    }))
})
