/**
 * Resource subscriptions of one MCP server (one client): the URIs it subscribed to, and one follower of the event
 * journal while there is at least one. The follower starts from the journal's head read before the subscribe is
 * answered, so every change committed after the answer is notified; on an event it sends
 * `notifications/resources/updated` for each subscribed URI the event changes (its task's status and timeline, and
 * the listing of tasks). Nothing polls the registry.
 */
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import type { EventsExpired, RegistryError } from "../../domain/Errors.js"
import type { AgentEvent } from "../../domain/Event.js"
import type { TaskId } from "../../domain/Ids.js"
import { Events } from "../../events/Events.js"
import type { ToolRuntime } from "../Server.js"
import { urisChangedBy } from "./ResourceUris.js"

/** How long a follower waits before it reads the journal again after the journal failed. */
const RETRY_AFTER = "1 second"

/**
 * Follow the journal from after `since` (only `taskId`'s events when given), running `onEvent` for each event in
 * order. A journal error is reported to `onError` and the follower resumes after the last event it handled, so no
 * event is skipped or repeated.
 */
export const followEvents = (
  since: number,
  taskId: TaskId | undefined,
  onEvent: (event: AgentEvent) => Effect.Effect<void>,
  onError: (error: RegistryError | EventsExpired) => Effect.Effect<void> = () => Effect.void
) =>
  Effect.gen(function*() {
    const events = yield* Events
    let last = since
    const follow = Effect.suspend(() =>
      events.stream({ since: last, follow: true, ...(taskId === undefined ? {} : { taskId }) }).pipe(
        Stream.runForEach((event) => Effect.andThen(onEvent(event), Effect.sync(() => (last = event.seq))))
      )
    )
    // Events dropped by retention cannot be replayed: a follower that fell that far behind goes on from the oldest
    // kept (a resource update says "read again", so the ones skipped lose nothing a read would not show).
    return yield* follow.pipe(
      Effect.tapError((e) =>
        e._tag === "EventsExpired"
          ? Effect.sync(() => (last = e.oldest - 1)).pipe(Effect.andThen(onError(e)))
          : onError(e)
      ),
      Effect.retry(Schedule.spaced(RETRY_AFTER))
    )
  })

/** The subscriptions of one server. */
export class Subscriptions {
  private readonly uris = new Set<string>()
  private follower: Fiber.Fiber<unknown, unknown> | undefined

  constructor(
    private readonly runtime: ToolRuntime,
    /** An agent's server follows its own task's events only. */
    private readonly taskId: TaskId | undefined,
    private readonly sendUpdated: (uri: string) => Promise<void>
  ) {}

  /** Subscribe to a URI already checked; resolves once changes after this moment will be notified. */
  async subscribe(uri: string): Promise<void> {
    this.uris.add(uri)
    if (this.follower !== undefined) return
    const head = await this.runtime.runPromise(Effect.gen(function*() {
      return yield* (yield* Events).head
    }))
    if (this.follower !== undefined || !this.uris.has(uri)) return
    this.follower = this.runtime.runFork(followEvents(head, this.taskId, (event) => this.notify(event)))
  }

  /** Stop notifying a URI (unknown URIs are ignored); the follower stops with the last subscription. */
  unsubscribe(uri: string): void {
    this.uris.delete(uri)
    if (this.uris.size === 0) this.stop()
  }

  /** Stop following (the server closed). */
  stop(): void {
    const follower = this.follower
    this.follower = undefined
    if (follower !== undefined) this.runtime.runFork(Fiber.interrupt(follower))
  }

  private notify(event: AgentEvent) {
    const uris = urisChangedBy(event).filter((uri) => this.uris.has(uri))
    // A notification the transport cannot send (the client is leaving) is dropped: the server's close stops this.
    return Effect.promise(() => Promise.all(uris.map((uri) => this.sendUpdated(uri).catch(() => undefined))))
  }
}
