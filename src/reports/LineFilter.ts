/**
 * Output filters: a caller's regular expression over an agent's log lines. Agents write those lines, so neither the
 * pattern nor the text can be trusted. Patterns are compiled by re2js (RE2 syntax: matching takes time linear in the
 * text, with no catastrophic backtracking), and the matching runs in a worker thread under a deadline: linear time is
 * still proportional to the compiled pattern's size, and a 20-character pattern such as `(a|b|ab|ba){1,1000}\d`
 * takes seconds per 10 KB line. The thread serving other calls never runs a match.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { Worker } from "node:worker_threads"
import { RE2JS, RE2JSSyntaxException } from "re2js"
import { InvalidInput } from "../domain/Errors.js"
import { filterWorkerScript } from "../host/PackagePaths.js"

/** Longest filter pattern accepted, in characters. */
export const MAX_FILTER_LENGTH = 500

const SYNTAX = "filters use RE2 syntax (https://github.com/google/re2/wiki/Syntax), which matches in linear time"

/** The construct RE2 refused, named for the caller, from the parser's error and the fragment it points at. */
const describeSyntaxError = (e: RE2JSSyntaxException): string => {
  const at = e.input ?? ""
  const unsupported = (construct: string) =>
    `${construct} is not supported: ${SYNTAX} and has no backreferences, lookaround, atomic groups or possessive quantifiers`
  if (/^\\[1-9]/.test(at)) return unsupported(`the backreference ${at}`)
  if (at.startsWith("\\k") || at.startsWith("\\g") || at.startsWith("(?P=")) {
    return unsupported(`the named backreference ${at}`)
  }
  if (at.startsWith("(?=")) return unsupported("the lookahead (?=…)")
  if (at.startsWith("(?!")) return unsupported("the negative lookahead (?!…)")
  if (at.startsWith("(?<=")) return unsupported("the lookbehind (?<=…)")
  if (at.startsWith("(?<!")) return unsupported("the negative lookbehind (?<!…)")
  if (at.startsWith("(?>")) return unsupported("the atomic group (?>…)")
  if (/^[*+?}]\+$/.test(at.slice(-2))) return unsupported(`the possessive quantifier ${at}`)
  return `not a valid regular expression (${e.error}${at === "" ? "" : `: ${at}`}); ${SYNTAX}`
}

/** Check a filter pattern: within MAX_FILTER_LENGTH and valid RE2 syntax; InvalidInput on `filter` otherwise. */
export const checkFilter = (pattern: string): Effect.Effect<void, InvalidInput> =>
  pattern.length > MAX_FILTER_LENGTH
    ? Effect.fail(
      new InvalidInput({
        field: "filter",
        reason: `the pattern has ${pattern.length} characters, more than ${MAX_FILTER_LENGTH}`
      })
    )
    : Effect.try({
      try: () => {
        RE2JS.compile(pattern)
      },
      catch: (e) =>
        new InvalidInput({
          field: "filter",
          reason: e instanceof RE2JSSyntaxException ? describeSyntaxError(e) : `cannot compile it: ${String(e)}`
        })
    })

/** A compiled filter running in a worker thread of its own. */
export interface LineFilter {
  /**
   * The lines that match, in order. Fails with InvalidInput on `filter` when matching the batch takes longer than the
   * deadline; the worker is then stopped and this filter refuses every later batch the same way.
   */
  readonly matching: (lines: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<string>, InvalidInput>
}

/**
 * A filter for `pattern` (checked first), whose worker thread lives as long as the scope. `deadlineMs` bounds the
 * time one batch may take.
 */
export const makeLineFilter = (
  pattern: string,
  deadlineMs: number
): Effect.Effect<LineFilter, InvalidInput, Scope.Scope> =>
  Effect.gen(function*() {
    yield* checkFilter(pattern)
    const worker = yield* Effect.acquireRelease(
      Effect.sync(() => new Worker(filterWorkerScript, { workerData: { pattern } })),
      (w) => Effect.promise(() => w.terminate())
    )
    let stopped = false
    const tooSlow = (lines: number) =>
      new InvalidInput({
        field: "filter",
        reason: `matching ${lines} log lines took longer than ${deadlineMs} ms and was stopped; ` +
          "use a simpler pattern, or read fewer bytes (max_bytes) or lines (tail)"
      })
    const ask = (lines: ReadonlyArray<string>) =>
      Effect.callback<ReadonlyArray<boolean>>((resume) => {
        const onMessage = (answer: ReadonlyArray<boolean>) => {
          cleanup()
          resume(Effect.succeed(answer))
        }
        const onError = (error: Error) => {
          cleanup()
          resume(Effect.die(error))
        }
        const onExit = (code: number) => {
          cleanup()
          resume(Effect.die(new Error(`the filter's worker thread exited with code ${code}`)))
        }
        const cleanup = () => {
          worker.off("message", onMessage)
          worker.off("error", onError)
          worker.off("exit", onExit)
        }
        worker.on("message", onMessage)
        worker.on("error", onError)
        worker.on("exit", onExit)
        worker.postMessage(lines)
        return Effect.sync(cleanup)
      })
    return {
      matching: (lines) =>
        stopped
          ? Effect.fail(tooSlow(lines.length))
          : lines.length === 0
          ? Effect.succeed([])
          : ask(lines).pipe(
            Effect.map((matches) => lines.filter((_, i) => matches[i] === true)),
            Effect.timeoutOrElse({
              duration: deadlineMs,
              orElse: () =>
                Effect.promise(() => {
                  stopped = true
                  return worker.terminate()
                }).pipe(Effect.andThen(Effect.fail(tooSlow(lines.length))))
            })
          )
    } satisfies LineFilter
  })
