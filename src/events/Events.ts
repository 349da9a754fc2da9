/**
 * The Events service: read and follow the event journal of a home (the file journal, or PostgreSQL's event table).
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type { EventsExpired, RegistryError } from "../domain/Errors.js"
import type { AgentEvent } from "../domain/Event.js"
import type { TaskId } from "../domain/Ids.js"

/** Which events a reader wants. */
export interface EventQuery {
  /** Only events after this sequence number (default 0: from the oldest one retained). */
  readonly since?: number
  /** Only this task's events. */
  readonly taskId?: TaskId
  /** Keep the stream open and emit events as they commit (default false: end at the newest committed event). */
  readonly follow?: boolean
}

/** The events contract. */
export class Events extends Context.Service<Events, {
  /**
   * Events in sequence order, each exactly once. With `since`, fails with EventsExpired when events after it are no
   * longer all kept.
   */
  readonly stream: (query?: EventQuery) => Stream.Stream<AgentEvent, RegistryError | EventsExpired>
  /** The newest committed sequence number (0 when none). */
  readonly head: Effect.Effect<number, RegistryError | EventsExpired>
}>()("spawnkit/Events") {}

/** The events of a query as a Stream (see `Events.stream`). */
export const events = (query?: EventQuery): Stream.Stream<AgentEvent, RegistryError | EventsExpired, Events> =>
  Stream.unwrap(Effect.map(Events, (e) => e.stream(query)))
