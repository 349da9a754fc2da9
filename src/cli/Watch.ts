/**
 * The commands that follow agents as they live: `spawnkit wait` (until agents end) and `spawnkit events` (the event
 * journal as JSON lines, optionally followed).
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { parseTaskId } from "../domain/Decode.js"
import { InvalidInput } from "../domain/Errors.js"
import { events } from "../events/Events.js"
import { waitFor, type WaitResult } from "../wait/Wait.js"

/** Exit status of a wait that ran out of time before its condition held (sysexits' EX_TEMPFAIL: try again). */
export const WAIT_TIMED_OUT = 75

/** What `spawnkit wait` was asked. */
export interface WaitFlags {
  readonly task: string
  readonly agents: ReadonlyArray<string>
  readonly parent?: string
  readonly any: boolean
  readonly timeout?: number
  readonly json: boolean
}

const renderWait = (result: WaitResult): string =>
  [
    result.satisfied ? `${result.mode === "all" ? "all" : "one"} ended` : "timed out: still waiting on some",
    ...result.agents.map((a) =>
      `${a.agent_id}: ${a.status}${a.exit_code !== undefined ? ` (exit ${a.exit_code})` : ""}` +
      (a.reason !== undefined ? ` ${a.reason}` : "")
    )
  ].join("\n")

/** `spawnkit wait`: exit 0 when the condition holds, WAIT_TIMED_OUT when the timeout came first. */
export const waitCommand = (f: WaitFlags) =>
  Effect.gen(function*() {
    const result = yield* waitFor({
      taskId: f.task,
      ...(f.agents.length > 0 ? { agentIds: f.agents } : {}),
      ...(f.parent !== undefined ? { parent: f.parent } : {}),
      mode: f.any ? "any" : "all",
      ...(f.timeout !== undefined ? { timeoutSeconds: f.timeout } : {})
    })
    if (result.timed_out) process.exitCode = WAIT_TIMED_OUT
    yield* f.json ? Console.log(JSON.stringify(result, null, 2)) : Console.log(renderWait(result))
  })

/** What `spawnkit events` was asked. */
export interface EventsFlags {
  readonly task?: string
  readonly since?: number
  readonly follow: boolean
}

/** `spawnkit events`: one JSON line per event, in sequence order; with --follow, until interrupted. */
export const eventsCommand = (f: EventsFlags) =>
  Effect.gen(function*() {
    if (f.since !== undefined && (!Number.isSafeInteger(f.since) || f.since < 0)) {
      return yield* new InvalidInput({ field: "since", reason: `${f.since} is not a sequence number (0 or more)` })
    }
    const taskId = f.task === undefined ? undefined : yield* parseTaskId(f.task)
    yield* events({
      ...(taskId !== undefined ? { taskId } : {}),
      ...(f.since !== undefined ? { since: f.since } : {}),
      follow: f.follow
    }).pipe(Stream.runForEach((e) => Console.log(JSON.stringify(e))))
  })
