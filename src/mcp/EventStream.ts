/**
 * `GET /events` of the HTTP server: the event journal as Server-Sent Events, each with its sequence number as its
 * `id`, so a client that reconnects with `Last-Event-ID` resumes with no gap and no duplicate. `?task=<id>` keeps one
 * task's events; `?since=<n>` starts after n when there is no Last-Event-ID. A comment line every few seconds keeps
 * idle connections (and the proxies between) open. The stream ends when the client goes or the server stops.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import type * as Http from "node:http"
import { parseTaskId } from "../domain/Decode.js"
import type { TaskId } from "../domain/Ids.js"
import { events } from "../events/Events.js"
import type { Caller } from "./Caller.js"
import type { InFlight, ToolRuntime } from "./Server.js"

/** The path of the event stream. */
export const EVENTS_PATH = "/events"
/** Seconds between keep-alive comments on an idle stream. */
const KEEPALIVE_SECONDS = 15

/** A sequence number as a client sends it: digits only, a safe integer. */
export const parseSeq = (text: string): number | undefined =>
  /^\d{1,15}$/.test(text) && Number.isSafeInteger(Number(text)) ? Number(text) : undefined

/** What a request asks for, or why it is refused. */
export const eventRequest = (
  url: URL,
  lastEventId: string | undefined
): { readonly since?: number; readonly task?: string } | { readonly refused: string } => {
  const resumeFrom = lastEventId ?? url.searchParams.get("since") ?? undefined
  const since = resumeFrom === undefined ? undefined : parseSeq(resumeFrom.trim())
  if (resumeFrom !== undefined && since === undefined) {
    return { refused: `${lastEventId !== undefined ? "Last-Event-ID" : "since"} must be a sequence number` }
  }
  const task = url.searchParams.get("task") ?? undefined
  return { ...(since !== undefined ? { since } : {}), ...(task !== undefined ? { task } : {}) }
}

/** Serve one SSE connection; `refuse` answers a bad request as the server's other refusals do. */
export const serveEvents = async (
  runtime: ToolRuntime,
  inFlight: InFlight,
  req: Http.IncomingMessage,
  res: Http.ServerResponse,
  url: URL,
  refuse: (status: number, message: string) => void,
  caller: Caller = { _tag: "Orchestrator" }
) => {
  const header = req.headers["last-event-id"]
  const request = eventRequest(url, Array.isArray(header) ? header[0] : header)
  if ("refused" in request) return refuse(400, request.refused)
  let taskId: TaskId | undefined
  if (request.task !== undefined) {
    const parsed = await runtime.runPromiseExit(parseTaskId(request.task, "task"))
    if (Exit.isFailure(parsed)) return refuse(400, `task: ${JSON.stringify(request.task)} is not a task id`)
    taskId = parsed.value
  }
  // An agent follows its own task's events only.
  if (caller._tag === "Agent") {
    if (taskId !== undefined && taskId !== caller.taskId) {
      return refuse(403, `task ${taskId} is not the task of agent ${caller.agentId}`)
    }
    taskId = caller.taskId as TaskId
  }
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store", connection: "keep-alive" })
  res.write(": spawnkit events\n\n")
  const write = (text: string) => Effect.sync(() => void res.write(text))
  const keepalive = write(": keep-alive\n\n").pipe(Effect.repeat(Schedule.spaced(`${KEEPALIVE_SECONDS} seconds`)))
  const stream = events({
    follow: true,
    ...(taskId !== undefined ? { taskId } : {}),
    ...(request.since !== undefined ? { since: request.since } : {})
  }).pipe(
    Stream.runForEach((e) => write(`id: ${e.seq}\nevent: ${e.kind}\ndata: ${JSON.stringify(e)}\n\n`)),
    // A stream that cannot go on (events expired, the registry unreadable) says why in an `error` event, then ends.
    Effect.catchCause((cause) =>
      Cause.hasInterruptsOnly(cause) ? Effect.failCause(cause) : write(
        `event: error\ndata: ${JSON.stringify({ error: Cause.pretty(cause).split("\n")[0] })}\n\n`
      )
    )
  )
  const fiber = runtime.runFork(Effect.raceFirst(stream, keepalive.pipe(Effect.andThen(Effect.never))))
  inFlight.fibers.add(fiber)
  res.on("close", () => void runtime.runFork(Fiber.interrupt(fiber)))
  await runtime.runPromise(Fiber.await(fiber)).finally(() => inFlight.fibers.delete(fiber))
  res.end()
}
